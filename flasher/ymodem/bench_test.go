package ymodem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pace copies src to dst no faster than a serial line of rate bytes per second carries
// them: each chunk leaves when the line has finished sending the one before. A sleep that
// oversleeps does not slow the line down (the schedule is kept), only an idle line
// restarts it.
func pace(dst io.Writer, src io.Reader, rate float64) {
	buf := make([]byte, 32)
	free := time.Now() // when the line is free again
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if now := time.Now(); now.Sub(free) > 3*time.Millisecond {
				free = now // the line was idle
			}
			free = free.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			time.Sleep(time.Until(free))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if c, ok := dst.(io.Closer); ok {
				c.Close()
			}
			return
		}
	}
}

type duplex struct {
	io.Reader
	io.Writer
}

// pacedPair is two ends of a paced line: what one end writes, the other reads at rate.
func pacedPair(rate float64) (a, b io.ReadWriter) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	aPacedR, aPacedW := io.Pipe()
	bPacedR, bPacedW := io.Pipe()
	go pace(aPacedW, ar, rate) // b -> a
	go pace(bPacedW, br, rate) // a -> b
	return duplex{aPacedR, aw}, duplex{bPacedR, bw}
}

const benchRate = 11520 // bytes per second: 115200 baud, 8N1

// TestBenchThroughput115200 compares our sender with lrzsz's sb (1K blocks, its fastest),
// each into our receiver over the same paced line. Run it with
// FIELDFLASH_BENCH=1 go test -run TestBenchThroughput115200 -v ./flasher/ymodem/
func TestBenchThroughput115200(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("set FIELDFLASH_BENCH=1 to run the throughput comparison (about 25 s)")
	}
	needTools(t, "sb")
	size := 64 << 10
	src := randomBytes(t, size)

	ours := func() float64 {
		host, device := pacedPair(benchRate)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sent := make(chan error, 1)
		go func() {
			_, err := Send(ctx, host, []File{{Name: "app.bin", Size: int64(size), Data: bytes.NewReader(src)}}, SendOptions{})
			sent <- err
		}()
		sink := &memorySink{}
		start := time.Now()
		if _, err := Receive(ctx, device, sink, ReceiveOptions{}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sink.files["app.bin"].Bytes(), src) {
			t.Fatal("received bytes differ")
		}
		return float64(size) / 1024 / took.Seconds()
	}

	sb := func() float64 {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "app.bin"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sb", "--ymodem", "-k", "app.bin")
		cmd.Dir = dir
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		toSb, device := pacedPair(benchRate)
		go func() { _, _ = io.Copy(toSb, stdout) }()
		go func() { _, _ = io.Copy(stdin, toSb) }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		sink := &memorySink{}
		start := time.Now()
		if _, err := Receive(ctx, device, sink, ReceiveOptions{}); err != nil {
			t.Fatalf("%v (sb said %s)", err, stderr.String())
		}
		took := time.Since(start)
		if !bytes.Equal(sink.files["app.bin"].Bytes(), src) {
			t.Fatal("received bytes differ")
		}
		return float64(size) / 1024 / took.Seconds()
	}

	// Best of two, interleaved: the machine is shared, and a stall is no property of either.
	var a, b float64
	for range 2 {
		a, b = max(a, ours()), max(b, sb())
	}
	fmt.Printf("BENCH ymodem_115200 %.2f KB/s\n", a)
	fmt.Printf("BENCH ymodem_lrzsz_sb_115200 %.2f KB/s\n", b)
	fmt.Printf("BENCH ymodem_vs_sb_ratio %.3f ratio\n", a/b)
	if a < b*0.95 {
		t.Errorf("our sender (%.2f KB/s) is slower than sb (%.2f KB/s)", a, b)
	}
}
