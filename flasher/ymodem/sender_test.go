package ymodem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A receiver that refuses every block: the sender tries each block Retries times, then
// cancels on the line instead of retrying for ever.
func TestSenderGivesUpOnABlockTheReceiverKeepsRefusing(t *testing.T) {
	host, device := pipePair()
	var seen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = device.Write([]byte{CRC})
		buf := make([]byte, 2048)
		for {
			n, err := device.Read(buf)
			seen.Write(buf[:n])
			if err != nil || bytes.Contains(seen.Bytes(), []byte{CAN, CAN}) {
				return
			}
			if n > 0 && (buf[0] == SOH || buf[0] == STX) {
				_, _ = device.Write([]byte{NAK})
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := randomBytes(t, 3000)
	acked, err := Send(ctx, host, []File{{Name: "app.bin", Size: 3000, Data: bytes.NewReader(p)}}, SendOptions{Retries: 4, BlockTimeout: time.Second})
	if !errors.Is(err, ErrAborted) || acked != 0 {
		t.Fatalf("acked %d, err %v; want the sender to give up", acked, err)
	}
	<-done // the receiver saw CAN CAN
	if n := bytes.Count(seen.Bytes(), frame(0, mustHeader(t, "app.bin", 3000))); n != 4 {
		t.Fatalf("header sent %d times, want 4", n)
	}
}

// A receiver that falls silent mid-transfer: each block waits BlockTimeout, not for ever.
func TestSenderTimesOutOnASilentReceiver(t *testing.T) {
	host, device := pipePair()
	go func() {
		_, _ = device.Write([]byte{CRC})
		_, _ = io.Copy(io.Discard, device)
	}()
	start := time.Now()
	_, err := Send(context.Background(), host, []File{{Name: "a", Size: 10, Data: bytes.NewReader(make([]byte, 10))}}, SendOptions{Retries: 3, BlockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrAborted) || time.Since(start) > 2*time.Second {
		t.Fatalf("after %v: %v; want the sender to give up after 3 × 50 ms", time.Since(start), err)
	}
}

func mustHeader(t *testing.T, name string, size int64) []byte {
	h, err := headerBlock(File{Name: name, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pipePair() (a, b io.ReadWriter) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return duplex{ar, aw}, duplex{br, bw}
}
