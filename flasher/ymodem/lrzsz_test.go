package ymodem

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
)

// These tests run the real lrzsz (sb, rb) through socat: socat gives our side a
// pseudo-terminal, which we open through go.bug.st/serial like a USB serial adapter, and
// runs lrzsz on pipes (rb on a pty loses its final ACK when it exits).

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y lrzsz socat): %v", tool, err)
		}
	}
}

// socatPort starts `socat pty,... EXEC:command` in dir and opens the pty as a serial port.
// The returned channel is closed when socat has exited; exitErr then holds its status.
func socatPort(t testing.TB, dir, command string) (serial.Port, <-chan struct{}, *lockedBuffer) {
	t.Helper()
	tty := filepath.Join(dir, "tty")
	cmd := exec.Command("socat", "pty,raw,echo=0,link="+tty, "EXEC:"+command+",pipes")
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so cleanup ends socat and its child
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting socat: %v", err)
	}
	done := make(chan struct{})
	go func() {
		stderr.exitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(tty); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat did not create %s; stderr: %s", tty, stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	port, err := serial.Open(tty, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("opening %s: %v", tty, err)
	}
	// A short read timeout: the Link must cope with Read returning (0, nil).
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = port.Close() })
	return port, done, stderr
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
	exitErr error // set before done closes
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func randomBytes(t testing.TB, n int) []byte {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}

func TestRbReceivesWhatWeSend(t *testing.T) {
	needTools(t, "socat", "rb")
	for _, size := range []int{0, 1, 127, 128, 1000, 1024, 1025, 70000} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			t.Parallel() // rb sleeps seconds at start and end; the line is idle meanwhile
			dir := t.TempDir()
			src := randomBytes(t, size)
			port, done, stderr := socatPort(t, dir, "rb --ymodem")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var last int64
			acked, err := Send(ctx, port, []File{{Name: "app.bin", Size: int64(size), Data: bytes.NewReader(src)}},
				SendOptions{BlockTimeout: 5 * time.Second, Progress: func(a int64) { last = a }})
			if err != nil {
				t.Fatalf("Send: %v (rb said: %s)", err, stderr)
			}
			if acked != int64(size) || last != int64(size) && size > 0 {
				t.Errorf("acked %d, progress %d, want %d", acked, last, size)
			}
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("rb did not finish")
			}
			got, err := os.ReadFile(filepath.Join(dir, "app.bin"))
			if err != nil {
				t.Fatalf("rb stored nothing: %v (rb said: %s)", err, stderr)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("rb stored %d bytes that differ from the %d sent", len(got), len(src))
			}
		})
	}
}

// memorySink keeps received files in memory.
type memorySink struct {
	files map[string]*bytes.Buffer
	ended map[string]int64
}

func (s *memorySink) Begin(h Header) (io.Writer, error) {
	if s.files == nil {
		s.files, s.ended = map[string]*bytes.Buffer{}, map[string]int64{}
	}
	b := &bytes.Buffer{}
	s.files[h.Name] = b
	return b, nil
}

func (s *memorySink) End(h Header, n int64) error {
	s.ended[h.Name] = n
	return nil
}

func TestWeReceiveWhatSbSends(t *testing.T) {
	needTools(t, "socat", "sb")
	dir := t.TempDir()
	a, b := randomBytes(t, 5000), randomBytes(t, 40000)
	for name, p := range map[string][]byte{"a.bin": a, "b.bin": b} {
		if err := os.WriteFile(filepath.Join(dir, name), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, flags := range []string{"--ymodem", "--ymodem -k"} {
		t.Run(flags, func(t *testing.T) {
			port, done, stderr := socatPort(t, dir, "sb "+flags+" a.bin b.bin")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sink := &memorySink{}
			files, err := Receive(ctx, port, sink, ReceiveOptions{})
			if err != nil {
				t.Fatalf("Receive: %v (sb said: %s)", err, stderr)
			}
			if len(files) != 2 || files[0].Name != "a.bin" || files[1].Size != int64(len(b)) {
				t.Fatalf("headers %+v", files)
			}
			if !bytes.Equal(sink.files["a.bin"].Bytes(), a) || !bytes.Equal(sink.files["b.bin"].Bytes(), b) {
				t.Fatal("received bytes differ from what sb sent")
			}
			select {
			case <-done:
				if stderr.exitErr != nil {
					t.Errorf("sb failed: %v: %s", stderr.exitErr, stderr)
				}
			case <-ctx.Done():
				t.Fatal("sb did not finish")
			}
		})
	}
}

func TestDriverFlashesABootloaderWithoutBanner(t *testing.T) {
	needTools(t, "socat", "rb")
	// rb stands for a classic bootloader that knows nothing of our conventions: it only
	// asks for a file with 'C'.
	dir := t.TempDir()
	port, done, stderr := socatPort(t, dir, "rb --ymodem")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := New(port, Options{})
	t0 := time.Now()
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Protocol != "ymodem" || id.HardwareID != "" || id.Mode != flasher.ModeBootloader {
		t.Fatalf("identity %+v, want only the protocol and the bootloader mode", id)
	}
	if c := d.Capabilities(); c.Check || c.Reset || c.Resume {
		t.Fatalf("capabilities %+v without a banner", c)
	}
	t.Logf("identified after %v", time.Since(t0))
	src := randomBytes(t, 30000)
	img := &flasher.Image{Name: "firmware/acme/app.bin", Size: int64(len(src)), Data: bytes.NewReader(src)}
	if _, err := d.Write(ctx, img, 0, nil); err != nil {
		t.Fatalf("Write: %v (rb said %s)", err, stderr)
	}
	t.Logf("written after %v", time.Since(t0))
	if err := d.Check(ctx, img); !errors.Is(err, flasher.ErrUnsupported) {
		t.Fatalf("Check without a banner: %v, want ErrUnsupported", err)
	}
	if _, err := d.Write(ctx, img, 100, nil); err == nil {
		t.Fatal("Write from byte 100 succeeded; YMODEM cannot resume")
	}
	<-done
	t.Logf("rb exited after %v", time.Since(t0))
	got, err := os.ReadFile(filepath.Join(dir, "app.bin"))
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("rb stored %d bytes (%v), want the %d sent", len(got), err, len(src))
	}
}
