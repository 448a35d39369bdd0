package smp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
)

const vectors = "../../testdata/mcuboot/"

// loadImage reads a real imgtool image from testdata/mcuboot as the engine hands it over.
func loadImage(t testing.TB, name string) *flasher.Image {
	t.Helper()
	b, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	return &flasher.Image{Name: name, Size: int64(len(b)), SHA256: sha256.Sum256(b), Data: bytes.NewReader(b)}
}

func imageBytes(img *flasher.Image) []byte {
	b := make([]byte, img.Size)
	img.Data.ReadAt(b, 0)
	return b
}

// bench is a virtual device served on the master side of a real pseudo-terminal; the
// client opens the slave side with go.bug.st/serial, as it opens a USB serial adapter.
type bench struct {
	dev    *smpdev.Device
	port   string
	resets chan flash.BootResult
	link   func(io.ReadWriter) io.ReadWriter // wraps the device's side (pacing)
}

type benchOptions struct {
	factory   string // image in the primary slot; "" leaves the flash empty
	device    smpdev.Options
	devicePHY func(io.ReadWriter) io.ReadWriter
	memoryFS  bool // keep the flash file on tmpfs when there is one
}

func newBench(t testing.TB, o benchOptions) *bench {
	t.Helper()
	layout := flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}
	// fsync guards against the host crashing, which no test here models.
	dir := t.TempDir()
	if o.memoryFS {
		// The benchmark measures the link, not this host's disk: a busy disk stalls
		// page-cache writes for hundreds of milliseconds.
		if d, err := os.MkdirTemp("/dev/shm", "fieldflash-smp-"); err == nil {
			dir = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	fl, err := flash.Create(filepath.Join(dir, "device.flash"), layout, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	if o.factory != "" {
		if err := fl.Program(flash.Primary, 0, imageBytes(loadImage(t, o.factory))); err != nil {
			t.Fatal(err)
		}
	}
	b := &bench{resets: make(chan flash.BootResult, 8)}
	o.device.OnReset = func(r flash.BootResult) { b.resets <- r }
	if o.device.HardwareID == "" {
		o.device.HardwareID = "acme-gw-r2"
	}
	b.dev, err = smpdev.New(fl, o.device)
	if err != nil {
		t.Fatal(err)
	}
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	b.port = tty.Name()
	var side io.ReadWriter = master
	if o.devicePHY != nil {
		side = o.devicePHY(master)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		smpdev.Serve(ctx, side, b.dev)
	}()
	t.Cleanup(func() {
		cancel()
		master.Close() // ends the device's blocked read
		tty.Close()
		<-done
	})
	return b
}

// open opens the client side of the link like the CLI does.
func (b *bench) open(t testing.TB) serial.Port {
	t.Helper()
	p, err := serial.Open(b.port, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	// A read timeout makes Read return (0, nil), which the driver must take in its stride.
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *bench) waitReset(t testing.TB) flash.BootResult {
	t.Helper()
	select {
	case r := <-b.resets:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("device did not reset")
	}
	return flash.BootResult{}
}

// paced sends bytes no faster than a UART at baud 8N1 (10 bits a byte), in small pieces
// so they arrive about when they would on a wire. A pseudo-terminal does not enforce baud.
type paced struct {
	io.ReadWriter
	bytesPerSec float64
	mu          sync.Mutex
	next        time.Time     // when the line has sent everything written so far
	late        time.Duration // how far the last write overslept its schedule
}

func pace(rw io.ReadWriter, baud int) *paced {
	return &paced{ReadWriter: rw, bytesPerSec: float64(baud) / 10}
}

func (p *paced) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The clock runs on the schedule, not on when a late sleep woke up: the time this
	// pacer overslept at the end of the last write is given back, so a busy machine
	// does not slow the line down (nor speed it up).
	if start := time.Now().Add(-p.late); p.next.Before(start) {
		p.next = start
	}
	defer func() { p.late = max(0, time.Since(p.next)) }()
	done := 0
	for done < len(b) {
		n := min(32, len(b)-done)
		p.next = p.next.Add(time.Duration(float64(n) / p.bytesPerSec * float64(time.Second)))
		time.Sleep(time.Until(p.next))
		w, err := p.ReadWriter.Write(b[done : done+n])
		done += w
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (p *paced) Close() error {
	if c, ok := p.ReadWriter.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// cable is pulled once the client has written after bytes: the write in progress is cut
// short and everything after fails, as an unplugged USB serial adapter fails with EIO.
type cable struct {
	io.ReadWriter
	mu    sync.Mutex
	after int
}

func (c *cable) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.after <= 0 {
		return 0, syscall.EIO
	}
	if len(b) > c.after {
		n, _ := c.ReadWriter.Write(b[:c.after])
		c.after = 0
		return n, syscall.EIO
	}
	c.after -= len(b)
	return c.ReadWriter.Write(b)
}

func (c *cable) Read(b []byte) (int, error) {
	c.mu.Lock()
	pulled := c.after <= 0
	c.mu.Unlock()
	if pulled {
		return 0, syscall.EIO
	}
	return c.ReadWriter.Read(b)
}

func (c *cable) Close() error { return c.ReadWriter.(io.Closer).Close() }

// noise flips one bit in each of the writes numbered in hit (counting from 1), as line
// noise does; the device's CRC check drops that packet.
type noise struct {
	io.ReadWriter
	mu     sync.Mutex
	writes int
	hit    map[int]bool
}

func (n *noise) Write(b []byte) (int, error) {
	n.mu.Lock()
	n.writes++
	hit := n.hit[n.writes]
	n.mu.Unlock()
	if hit && len(b) > 40 {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x04
	}
	return n.ReadWriter.Write(b)
}

func (n *noise) Close() error { return n.ReadWriter.(io.Closer).Close() }
