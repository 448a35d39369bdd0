package smp

import (
	"bytes"
	"testing"
)

func rawResponse(t testing.TB, seq uint8, body any) []byte {
	t.Helper()
	b, err := Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return BuildMessage(Header{Op: OpReadRsp, Group: GroupImage, Seq: seq, ID: ImageState}, b)
}

func TestRawDecoderFindsResponsesBetweenNoise(t *testing.T) {
	a := rawResponse(t, 7, map[string]int{"rc": 0})
	b := rawResponse(t, 8, map[string]any{"images": []any{}})
	var stream []byte
	stream = append(stream, 0x06, 0x09, 'Q', 'U', '\n') // a console frame's start: noise here
	stream = append(stream, a...)
	stream = append(stream, 0x00, 0xff, 0x13) // line noise
	stream = append(stream, b...)
	var d RawDecoder
	var got [][]byte
	for i := 0; i < len(stream); i += 5 { // as the UART hands it over, a few bytes at a time
		got = append(got, d.Write(stream[i:min(i+5, len(stream))])...)
	}
	if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("decoded %d messages %x; want the two responses", len(got), got)
	}
}

func TestRawDecoderDropsACutPacketWhenTheLineGoesQuiet(t *testing.T) {
	a := rawResponse(t, 7, map[string]int{"rc": 0})
	var d RawDecoder
	if m := d.Write(a[:len(a)-2]); len(m) != 0 {
		t.Fatalf("a cut packet decoded: %x", m)
	}
	for d.Pending() > 0 {
		d.Idle()
	}
	if m := d.Write(a); len(m) != 1 || !bytes.Equal(m[0], a) {
		t.Fatalf("after the cut packet was dropped, the next one decodes as %x", m)
	}
}

func TestWindowSettlesAtOneOnALossyLineAndGrowsOnAClean(t *testing.T) {
	w := newWindow(3)
	for range 8 {
		w.onTime()
	}
	if w.n != 3 {
		t.Fatalf("after 8 answers on time the window is %d, want 3", w.n)
	}
	// A line that loses whatever is sent while the device is busy: each try at two is
	// lost, and the tries become rarer.
	w.lost()
	tries := 0
	for range 200 {
		if w.n > 1 {
			tries++
			w.lost()
			continue
		}
		w.onTime()
	}
	if tries > 6 {
		t.Fatalf("the window tried to grow %d times in 200 answers on a line that loses every second chunk; want it to back off", tries)
	}
}

func FuzzRawDecoder(f *testing.F) {
	f.Add(rawResponse(f, 1, map[string]int{"rc": 0}), 3)
	f.Add([]byte{0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		if step <= 0 || step > 64 {
			step = 7
		}
		var d RawDecoder
		for i := 0; i < len(b); i += step {
			for _, m := range d.Write(b[i:min(i+step, len(b))]) {
				if _, _, err := ParseMessage(m); err != nil {
					t.Fatalf("decoded a message that does not parse: %v", err)
				}
			}
		}
		for d.Pending() > 0 {
			d.Idle()
		}
	})
}
