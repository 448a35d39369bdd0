package ymodem

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// frame builds one block as a sender puts it on the line.
func frame(num int, data []byte) []byte {
	f := []byte{SOH, byte(num), ^byte(num)}
	if len(data) == 1024 {
		f[0] = STX
	}
	f = append(f, data...)
	crc := crc16(data)
	return append(f, byte(crc>>8), byte(crc))
}

func validBatch(name string, p []byte) []byte {
	h, _ := headerBlock(File{Name: name, Size: int64(len(p))})
	stream := frame(0, h)
	num := 1
	for off := 0; off < len(p); num++ {
		n := 1024
		if len(p)-off <= 896 {
			n = 128
		}
		block := bytes.Repeat([]byte{Pad}, n)
		off += copy(block, p[off:])
		stream = append(stream, frame(num, block)...)
	}
	stream = append(stream, EOT, EOT)
	return append(stream, frame(0, make([]byte, 128))...)
}

// lineFromSender is what a receiver reads: the given bytes, then the end of the stream.
type lineFromSender struct {
	io.Reader
	io.Writer
}

func FuzzReceiver(f *testing.F) {
	f.Add(validBatch("app.bin", bytes.Repeat([]byte("firmware"), 300)))
	f.Add(validBatch("a", nil))
	f.Add(validBatch("x", []byte{1, 2, 3}))
	dup := validBatch("dup.bin", make([]byte, 2000))
	f.Add(append(dup[:133+1029], dup[133:]...)) // block 1 twice
	f.Add(append(frame(0, append([]byte("n\x00-5 0 0"), make([]byte, 119)...)), EOT))
	f.Add(append(frame(0, append([]byte("n\x0099999999999"), make([]byte, 115)...)), CAN, CAN))
	f.Add(append(frame(0, append([]byte("n\x0010 0 0"), make([]byte, 119)...)), frame(3, make([]byte, 128))...))
	f.Add([]byte{CAN, CAN})
	f.Add([]byte{STX, 1, 0xFE, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		sink := &memorySink{}
		done := make(chan struct{})
		var files []Header
		var err error
		go func() {
			defer close(done)
			files, err = Receive(ctx, lineFromSender{bytes.NewReader(in), io.Discard}, sink, ReceiveOptions{
				MaxSize: 64 << 10, StartTimeout: 20 * time.Millisecond, BlockTimeout: 20 * time.Millisecond,
				ByteTimeout: 20 * time.Millisecond, StartTries: 3, Retries: 3,
			})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Receive hung")
		}
		if err != nil {
			return
		}
		for _, h := range files {
			got := int64(sink.files[h.Name].Len())
			if h.Size >= 0 && got != h.Size {
				t.Fatalf("file %q: stored %d bytes, header said %d", h.Name, got, h.Size)
			}
			if got > 64<<10 {
				t.Fatalf("file %q: stored %d bytes over the limit", h.Name, got)
			}
		}
	})
}

func TestReceiverTakesAValidBatch(t *testing.T) {
	p := bytes.Repeat([]byte("firmware"), 300)
	sink := &memorySink{}
	files, err := Receive(context.Background(), lineFromSender{bytes.NewReader(validBatch("app.bin", p)), io.Discard}, sink, ReceiveOptions{})
	if err != nil || len(files) != 1 || !bytes.Equal(sink.files["app.bin"].Bytes(), p) {
		t.Fatalf("files %+v, err %v", files, err)
	}
}

func TestReceiverCancelsABlockOutOfOrder(t *testing.T) {
	h, _ := headerBlock(File{Name: "app.bin", Size: 300})
	in := append(frame(0, h), frame(2, make([]byte, 128))...)
	var out bytes.Buffer
	_, err := Receive(context.Background(), lineFromSender{bytes.NewReader(in), &out}, &memorySink{}, ReceiveOptions{})
	if err == nil || !bytes.Contains(out.Bytes(), []byte{CAN, CAN}) {
		t.Fatalf("err %v, sent % x; want CAN CAN for block 2 before block 1", err, out.Bytes())
	}
}

func FuzzDriverLines(f *testing.F) {
	f.Add("fieldflash-sim ymodem bootloader hw=acme ver=1.0 counter=3 max=1024 app=1.0 app_sha256=00ff")
	f.Add("CCCboot ymodem bootloader counter=-1 max=x app_sha256=zz")
	f.Add("ok size=12 sha256=" + string(bytes.Repeat([]byte("ab"), 32)))
	f.Add("fail reason=too big")
	f.Fuzz(func(t *testing.T, line string) {
		v := parseVerdict(line)
		if v.ok && v.reason != "" {
			t.Fatal("a verdict both ok and with a reason")
		}
		id := newIdentity()
		if i := bytes.Index([]byte(line), []byte(BannerMarker)); i >= 0 {
			parseBanner(id, line, i)
			if id.Protocol != "ymodem" {
				t.Fatal("banner changed the protocol")
			}
		}
	})
}
