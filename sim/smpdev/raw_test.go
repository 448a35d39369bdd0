package smpdev

import (
	"bytes"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
)

func TestRawDecoderFollowsSerialUtil(t *testing.T) {
	msg := smp.BuildMessage(smp.Header{Op: smp.OpRead, Group: smp.GroupOS, ID: smp.OSEcho}, []byte{0xa1, 0x61, 0x64, 0x61, 0x78})
	r := rawDecoder{max: 384}
	// Split anywhere: the packet comes out once it is whole.
	if r.Write(msg[:5]) != nil {
		t.Fatal("half a header made a packet")
	}
	if got := r.Write(msg[5:]); !bytes.Equal(got, msg) {
		t.Fatalf("packet %x", got)
	}
	// Two packets in one fragment: more bytes than the header says, all dropped.
	if r.Write(append(bytes.Clone(msg), msg...)) != nil {
		t.Fatal("two packets in one fragment were taken")
	}
	if got := r.Write(msg); !bytes.Equal(got, msg) {
		t.Fatal("the decoder did not start over after a drop")
	}
	// A console frame (0x06 0x09 ...) is op 6: dropped, not held.
	if r.Write([]byte{0x06, 0x09, 'A', 'B', 'C', 'D', 'E', 'F', '\n'}) != nil || r.buf != nil {
		t.Fatal("a console frame was held by the raw decoder")
	}
	big := smp.BuildMessage(smp.Header{Op: smp.OpWrite, Group: smp.GroupImage, ID: smp.ImageUpload}, make([]byte, 400))
	if r.Write(big) != nil || r.buf != nil {
		t.Fatal("a packet over CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE was taken")
	}
}

// While the flash stalls the CPU, a part that drops bytes keeps only its RX FIFO's worth;
// while the device reboots, it keeps nothing.
func TestReceiverDropsWhileBusy(t *testing.T) {
	d := &Device{opt: Options{Part: flash.PartNRF52840}}
	if got := d.receive([]byte("0123456789")); len(got) != 10 {
		t.Fatalf("idle receiver kept %d bytes", len(got))
	}
	d.setBusy(time.Hour)
	d.busyStart = time.Now().Add(-time.Second) // the stall began before these bytes crossed the wire
	a := d.receive([]byte("0123"))
	b := d.receive([]byte("456789"))
	if len(a)+len(b) != flash.PartNRF52840.RxFIFO {
		t.Fatalf("busy receiver kept %d+%d bytes, want the FIFO's %d", len(a), len(b), flash.PartNRF52840.RxFIFO)
	}
	d.busyUntil, d.resetStart, d.resetUntil = time.Time{}, time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	if got := d.receive([]byte("x")); len(got) != 0 {
		t.Fatal("a rebooting device heard a byte")
	}
	usb := &Device{opt: Options{Part: flash.Part{Name: "usb", EraseUnit: 4096, EraseTime: time.Millisecond}}}
	usb.setBusy(time.Hour)
	usb.busyStart = time.Now().Add(-time.Second)
	if got := usb.receive([]byte("0123456789")); len(got) != 10 {
		t.Fatal("a part without DropsWhileBusy lost bytes")
	}
}

func FuzzRawDecoder(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 0, 0, 1, 0, 0xa1, 0x61, 0x64, 0x61, 0x78}, 3)
	f.Add([]byte{0x06, 0x09, 'A', '\n'}, 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		r := rawDecoder{max: 384}
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		for _, frag := range [][]byte{b[:cut], b[cut:]} {
			if p := r.Write(frag); p != nil {
				if len(p) < 8 || len(p) > 384 {
					t.Fatalf("packet of %d bytes", len(p))
				}
			}
		}
		if len(r.buf) > 384+len(b) {
			t.Fatal("decoder holds more than it was given")
		}
	})
}
