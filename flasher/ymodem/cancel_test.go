package ymodem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
)

// drain reads everything the receiver sends and hands it over when the stream ends.
func drain(r io.Reader) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	return out
}

// A sender that gives up right after a damaged block (the app was killed, the technician
// pressed Cancel) sends CAN CAN while the receiver purges the rest of the block, or into
// the block itself when bytes were lost. The receiver must still see the cancel, at once,
// and leave what came after it (the next session's identify line) on the line; before, it
// purged the cancel away and waited a minute for blocks that never came.
func TestReceiverSeesACancelAfterADamagedBlock(t *testing.T) {
	header := frame(0, mustHeader(t, "app.bin", 5000))
	block := frame(1, bytes.Repeat([]byte{0x5A}, 1024))
	damaged := bytes.Clone(block)
	damaged[500] ^= 0x10
	for _, tc := range []struct {
		name string
		line []byte
	}{
		{"garbled block, then the cancel", append(append(bytes.Clone(damaged), cancelSequence...), "\r\n"...)},
		{"cut block, the cancel inside it", append(append(bytes.Clone(block[:600]), cancelSequence...), "\r\n"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			senderEnd, receiverEnd := pipePair()
			sent := drain(senderEnd)
			link := NewLink(receiverEnd)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := Receive(ctx, link, &memorySink{}, ReceiveOptions{ByteTimeout: 200 * time.Millisecond})
				done <- err
			}()
			start := time.Now()
			if _, err := senderEnd.Write(append(bytes.Clone(header), tc.line...)); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if !errors.Is(err, ErrCancelled) {
				t.Fatalf("Receive: %v after %s, want the sender's cancel", err, time.Since(start))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("the receiver took %s to see the cancel", took)
			}
			b, err := link.ReadByteContext(ctx, time.Now().Add(time.Second))
			if err != nil || b != '\r' {
				t.Fatalf("after the cancel the line holds %q, %v; want the next session's CR LF", b, err)
			}
			senderEnd.(duplex).Writer.(io.Closer).Close()
			receiverEnd.(duplex).Writer.(io.Closer).Close()
			<-sent
		})
	}
}

// An idle bootloader that reads a stray STX (the tail of a block from a sender that
// stopped) hands it to Receive with Resync: without a header right behind it, Receive
// drops the tail and returns ErrNoBatch at once, having sent nothing.
func TestReceiverDropsAStrayBlockTail(t *testing.T) {
	tail := append([]byte{STX, 9, ^byte(9)}, bytes.Repeat([]byte{0xA5}, 300)...)
	var out bytes.Buffer
	start := time.Now()
	_, err := Receive(context.Background(), lineFromSender{io.MultiReader(bytes.NewReader(tail), blockForever{}), &out},
		&memorySink{}, ReceiveOptions{Started: true, Resync: 50 * time.Millisecond})
	if !errors.Is(err, ErrNoBatch) {
		t.Fatalf("Receive: %v, want ErrNoBatch", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("resynchronising took %s", took)
	}
	if out.Len() != 0 {
		t.Fatalf("the receiver sent % x to a sender that is gone", out.Bytes())
	}
	// A real start behind the same first byte is taken as before.
	p := bytes.Repeat([]byte("firmware"), 300)
	sink := &memorySink{}
	files, err := Receive(context.Background(), lineFromSender{bytes.NewReader(validBatch("app.bin", p)), io.Discard}, sink,
		ReceiveOptions{Started: true, Resync: 50 * time.Millisecond})
	if err != nil || len(files) != 1 || !bytes.Equal(sink.files["app.bin"].Bytes(), p) {
		t.Fatalf("a real batch after Resync: files %+v, err %v", files, err)
	}
}

// blockForever is a line that has gone quiet: Read never returns.
type blockForever struct{}

func (blockForever) Read(p []byte) (int, error) { select {} }

// failingSink refuses files or fails to store them, as a bootloader does when it will
// not take an image (at the header) or loses its storage in the middle.
type failingSink struct {
	refuse  error
	storing error
}

func (s failingSink) Begin(h Header) (io.Writer, error) {
	if s.refuse != nil {
		return nil, s.refuse
	}
	return failingWriter{s.storing}, nil
}
func (s failingSink) End(h Header, n int64) error { return nil }

type failingWriter struct{ err error }

func (w failingWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Without a banner there is no verdict to read, and the driver judges a cancel by where
// it came: at the header the bootloader refused the image (final), in the middle of the
// data it gave up on the line (retried).
func TestDriverJudgesACancelWithoutVerdictByWhereItCame(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sink      Sink
		transient bool
	}{
		{"refused at the header", failingSink{refuse: errors.New("not for this device")}, false},
		{"gave up in the middle", failingSink{storing: errors.New("line noise")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, device := pipePair()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() { _, _ = Receive(ctx, device, tc.sink, ReceiveOptions{}) }()
			p := bytes.Repeat([]byte("firmware"), 1000)
			d := New(host, Options{})
			_, err := d.Write(ctx, &flasher.Image{Name: "app.bin", Size: int64(len(p)), Data: bytes.NewReader(p)}, 0, nil)
			if !errors.Is(err, ErrCancelled) {
				t.Fatalf("Write: %v, want the bootloader's cancel", err)
			}
			if got := flasher.IsTransient(err); got != tc.transient {
				t.Fatalf("Write: %v: transient %v, want %v", err, got, tc.transient)
			}
		})
	}
}
