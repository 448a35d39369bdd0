package serial

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// newPty gives a real pseudo-terminal: the master plays the device, the slave path is the
// port fieldflash opens.
func newPty(t *testing.T) (master *os.File, path string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s.Name()
}

func TestPortTalksToADeviceBothWays(t *testing.T) {
	dev, path := newPty(t)
	p, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Path() != path {
		t.Errorf("Path() = %q, want %q", p.Path(), path)
	}
	if _, err := p.Write([]byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(dev, got); err != nil || string(got) != "hello\r\n" {
		t.Fatalf("device got %q, %v; want the bytes untouched", got, err)
	}
	if _, err := dev.Write([]byte{0x0a, 0x00, 0xff, 0x0d}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 4)
	if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, []byte{0x0a, 0x00, 0xff, 0x0d}) {
		t.Fatalf("host got % x, %v; want 0a 00 ff 0d (raw mode, no newline rewriting)", got, err)
	}
}

func TestReadTimeoutGivesNothingRatherThanAnError(t *testing.T) {
	_, path := newPty(t)
	p, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetReadTimeout(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := p.Read(make([]byte, 16))
	if n != 0 || err != nil {
		t.Fatalf("Read on a quiet line = (%d, %v), want (0, nil)", n, err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Errorf("Read returned after %v, before its 30ms timeout", d)
	}
}

func TestCablePullIsErrDisconnected(t *testing.T) {
	dev, path := newPty(t)
	p, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadTimeout(5 * time.Second)
	dev.Close() // the far end of the cable goes away: the kernel hangs the tty up
	_, err = p.Read(make([]byte, 8))
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Read after the cable pull: %v; want ErrDisconnected", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "plug it back in") {
		t.Errorf("error %q should name the port and the next step", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Write after the cable pull: %v; want ErrDisconnected", err)
	}
}

func TestOwnCloseIsNotACablePull(t *testing.T) {
	_, path := newPty(t)
	p, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	_, err = p.Read(make([]byte, 8))
	if err == nil || errors.Is(err, ErrDisconnected) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v; want os.ErrClosed, not ErrDisconnected", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestModemLinesOnAPtyAreNotErrors(t *testing.T) {
	_, path := newPty(t)
	p, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mc, ok := p.(ModemControl)
	if !ok {
		t.Fatal("an opened port should offer ModemControl")
	}
	for _, on := range []bool{true, false} {
		if err := mc.SetDTR(on); err != nil {
			t.Errorf("SetDTR(%v) on a pty: %v; want nil (ENOTTY is forgiven)", on, err)
		}
		if err := mc.SetRTS(on); err != nil {
			t.Errorf("SetRTS(%v) on a pty: %v; want nil", on, err)
		}
	}
}

func TestResetInputBufferDiscardsABootBanner(t *testing.T) {
	dev, path := newPty(t)
	p, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dev.Write([]byte("*** Booting Zephyr OS ***\r\n"))
	// Reading the first byte shows the banner has reached the port's buffer.
	p.SetReadTimeout(2 * time.Second)
	if n, err := p.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("banner did not arrive: %d, %v", n, err)
	}
	if err := p.(InputFlusher).ResetInputBuffer(); err != nil {
		t.Fatal(err)
	}
	dev.Write([]byte("ok"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(p, got); err != nil || string(got) != "ok" {
		t.Fatalf("after discarding, read %q, %v; want \"ok\"", got, err)
	}
}

func TestMissingPortSaysToCheckTheCable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyUSB0")
	_, err := Open(path, 115200)
	if err == nil {
		t.Fatal("opened a port that does not exist")
	}
	want := "serial port " + path + ": not found; is the cable plugged in? `fieldflash devices` lists ports"
	if err.Error() != want {
		t.Errorf("error\n %q\nwant\n %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error should match fs.ErrNotExist for callers that retry until the port appears")
	}
}

func TestAFileIsNotASerialPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "firmware.bin")
	os.WriteFile(path, []byte("not a tty"), 0o600)
	_, err := Open(path, 115200)
	if err == nil || !strings.Contains(err.Error(), "not a serial port") {
		t.Fatalf("Open(regular file) = %v; want \"not a serial port\"", err)
	}
}

func TestPermissionDeniedNamesTheDialoutGroup(t *testing.T) {
	want := "serial port /dev/ttyUSB0: permission denied; add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again"
	if os.Geteuid() != 0 {
		// A real refusal: a pty whose node nobody may open.
		_, path := newPty(t)
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, 115200)
		if err == nil || !strings.Contains(err.Error(), "dialout") {
			t.Fatalf("Open(unreadable port) = %v; want the dialout hint", err)
		}
	}
	// Root is never refused, so below the kernel's boundary the errno is given directly.
	if got := openError("/dev/ttyUSB0", 115200, syscall.EACCES).Error(); got != want {
		t.Errorf("EACCES:\n %q\nwant\n %q", got, want)
	}
}

func TestBusyPortSaysWhoMightHoldIt(t *testing.T) {
	_, path := newPty(t)
	first, err := Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if os.Geteuid() != 0 {
		// go.bug.st/serial takes the port exclusively (TIOCEXCL); a second open is refused.
		_, err := Open(path, 115200)
		if err == nil || !strings.Contains(err.Error(), "busy") {
			t.Fatalf("second Open = %v; want busy", err)
		}
	}
	// Root passes TIOCEXCL, so the errno is given directly.
	got := openError(path, 115200, syscall.EBUSY).Error()
	if !strings.HasPrefix(got, "serial port "+path+": busy") || !strings.Contains(got, "close that program and retry") {
		t.Errorf("EBUSY: %q", got)
	}
}

func TestNegativeBaudIsRefused(t *testing.T) {
	_, path := newPty(t)
	if _, err := Open(path, -9600); err == nil || !strings.Contains(err.Error(), "115200") {
		t.Fatalf("Open(baud -9600) = %v; want a refusal suggesting a rate", err)
	}
}

// A driver closing its port while its reader goroutine waits (the engine does this on
// every reconnect) must not hang, even when new ports are opened at the same moment and
// reuse the descriptor numbers.
func TestCloseEndsAWaitingReadWhilePortsComeAndGo(t *testing.T) {
	for i := 0; i < 50; i++ {
		_, path := newPty(t)
		p, err := Open(path, 115200)
		if err != nil {
			t.Fatal(err)
		}
		p.SetReadTimeout(0) // wait without limit
		read := make(chan error, 1)
		go func() {
			_, err := p.Read(make([]byte, 8))
			read <- err
		}()
		_, other := newPty(t) // a re-plugged port, opened while the old one closes
		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		q, err := Open(other, 115200)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close hung while a Read was waiting")
		}
		select {
		case err := <-read:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("the waiting Read ended with %v; want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiting Read never ended")
		}
		q.Close()
	}
}
