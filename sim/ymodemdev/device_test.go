package ymodemdev

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
)

// rig is a virtual bootloader on the master side of a real pseudo-terminal and a serial
// port opened on its slave through go.bug.st/serial, as the flasher opens a USB adapter.
type rig struct {
	dev    *Device
	port   serial.Port
	master *os.File
	served chan error // gets Serve's result
	resets chan struct{}
}

func startRig(t *testing.T, cfg Config, wrap func(io.ReadWriter) io.ReadWriter) *rig {
	t.Helper()
	resets := make(chan struct{}, 4)
	if cfg.CInterval == 0 {
		cfg.CInterval = 50 * time.Millisecond
	}
	cfg.OnReset = func() { resets <- struct{}{} }
	dev, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	port, err := serial.Open(slave.Name(), &serial.Mode{BaudRate: 115200})
	slave.Close()
	if err != nil {
		t.Fatalf("opening %s: %v", slave.Name(), err)
	}
	if err := port.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var rw io.ReadWriter = master
	if wrap != nil {
		rw = wrap(master)
	}
	r := &rig{dev: dev, port: port, master: master, served: make(chan error, 1), resets: resets}
	go func() { r.served <- dev.Serve(ctx, rw) }()
	t.Cleanup(func() {
		cancel()
		master.Close()
		port.Close()
	})
	return r
}

func randomImage(n int) []byte {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}

func image(name string, p []byte) *flasher.Image {
	return &flasher.Image{Name: name, Size: int64(len(p)), SHA256: sha256.Sum256(p), Data: bytes.NewReader(p)}
}

func mustBoot(t *testing.T, dev *Device, want []byte) {
	t.Helper()
	_, got, err := dev.Booted()
	if err != nil {
		t.Fatalf("the device does not boot: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the device boots %d bytes (sha256 %x), want %d bytes (sha256 %x)", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func testConfig(t *testing.T) Config {
	return Config{Dir: filepath.Join(t.TempDir(), "flash"), HardwareID: "acme-x1", Version: "2.0.1", MaxImage: 256 << 10}
}

func TestFlashReplacesTheApplication(t *testing.T) {
	cfg := testConfig(t)
	old, next := randomImage(30000), randomImage(100000)
	r := startRig(t, cfg, nil)
	if err := r.dev.Install(old, Info{Version: "1.0.0", Counter: 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{})
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Protocol != "ymodem" || id.HardwareID != "acme-x1" || id.Bootloader != "fieldflash-sim 2.0.1" ||
		id.ReleaseCounter == nil || *id.ReleaseCounter != 3 || id.Components["app"] != "1.0.0" ||
		len(id.Slots) != 1 || id.Slots[0].Size != 256<<10 {
		t.Fatalf("identity %+v", id)
	}
	if c := d.Capabilities(); !c.Check || !c.Reset || c.Resume || c.Test || c.Confirm {
		t.Fatalf("capabilities %+v", c)
	}
	var last int64
	img := image("firmware/acme-x1/app-2.0.0.bin", next)
	acked, err := d.Write(ctx, img, 0, func(a int64) { last = a })
	if err != nil {
		t.Fatal(err)
	}
	if acked != int64(len(next)) || last != acked {
		t.Fatalf("acked %d, last progress %d, want %d", acked, last, len(next))
	}
	if err := d.Check(ctx, img); err != nil {
		t.Fatal(err)
	}
	mustBoot(t, r.dev, next)
	if err := d.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.resets:
	case <-ctx.Done():
		t.Fatal("the device was not reset")
	}
	// The device survives its power cycle with the new application.
	again, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustBoot(t, again, next)
}

func TestCheckCatchesAnImageThatDiffersFromTheBundle(t *testing.T) {
	r := startRig(t, testConfig(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{})
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	img := image("app.bin", randomImage(5000))
	if _, err := d.Write(ctx, img, 0, nil); err != nil {
		t.Fatal(err)
	}
	img.SHA256[0] ^= 1 // the bundle said another hash
	if err := d.Check(ctx, img); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("Check: %v, want a hash mismatch", err)
	}
}

func TestCancelMidTransferKeepsTheOldApplication(t *testing.T) {
	old, next := randomImage(20000), randomImage(200000)
	r := startRig(t, testConfig(t), nil)
	if err := r.dev.Install(old, Info{Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	d := ymodem.New(r.port, ymodem.Options{})
	if _, err := d.Identify(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	acked, err := d.Write(ctx, image("app.bin", next), 0, func(a int64) {
		if a >= 50000 {
			cancel() // the technician presses Cancel
		}
	})
	if !errors.Is(err, context.Canceled) || acked < 50000 || acked >= int64(len(next)) {
		t.Fatalf("Write after cancel: acked %d, %v", acked, err)
	}
	// The device saw CAN CAN, says so, and is back asking for a file.
	check, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	err = d.Check(check, image("app.bin", next))
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Check after cancel: %v, want the device's verdict that the sender cancelled", err)
	}
	mustBoot(t, r.dev, old)
	if _, err := d.Write(check, image("app.bin", next), 0, nil); err != nil {
		t.Fatalf("flashing again after a cancel: %v", err)
	}
	if err := d.Check(check, image("app.bin", next)); err != nil {
		t.Fatal(err)
	}
	mustBoot(t, r.dev, next)
}

// noisyLine damages bytes on their way to the device: the fault a long unshielded cable
// causes. (A stand-in until sim/link's shaper exists.)
type noisyLine struct {
	io.ReadWriter
	mu      sync.Mutex
	n, hits int
	every   int
}

func (l *noisyLine) Read(p []byte) (int, error) {
	n, err := l.ReadWriter.Read(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range p[:n] {
		l.n++
		if l.n%l.every == 0 {
			p[i] ^= 0x5A
			l.hits++
		}
	}
	return n, err
}

func TestDamagedBlocksAreSentAgain(t *testing.T) {
	next := randomImage(150000)
	var line *noisyLine
	r := startRig(t, testConfig(t), func(rw io.ReadWriter) io.ReadWriter {
		line = &noisyLine{ReadWriter: rw, every: 7919}
		return line
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{})
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(ctx, image("app.bin", next), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(ctx, image("app.bin", next)); err != nil {
		t.Fatal(err)
	}
	mustBoot(t, r.dev, next)
	line.mu.Lock()
	defer line.mu.Unlock()
	if line.hits < 15 {
		t.Fatalf("only %d bytes were damaged; the test did not test retries", line.hits)
	}
}

// powerCut passes the first budget bytes to the device, then the device loses power.
type powerCut struct {
	io.ReadWriter
	budget int
}

var errPowerLost = errors.New("power lost")

func (c *powerCut) Read(p []byte) (int, error) {
	if c.budget <= 0 {
		return 0, errPowerLost
	}
	n, err := c.ReadWriter.Read(p[:min(len(p), c.budget)])
	c.budget -= n
	return n, err
}

func TestPowerLossAtAnyByteLeavesABootableApplication(t *testing.T) {
	old, next := randomImage(30000), randomImage(50000)
	// What the host sends: header block, 48 blocks of 1K, 7 of 128 bytes for the last
	// 848 bytes, EOT, EOT, the empty header that ends the batch.
	header := 3 + 128 + 2
	data := 48*(3+1024+2) + 7*(3+128+2)
	secondEOT := header + data + 2
	cuts := []int{0, 1, 100, header, header + 1, header + 5000, header + data - 1, header + data, secondEOT - 1, secondEOT, secondEOT + 50}
	for _, cut := range cuts {
		cfg := testConfig(t)
		dev, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Install(old, Info{Version: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
		r := startRig(t, cfg, func(rw io.ReadWriter) io.ReadWriter { return &powerCut{rw, cut} })
		go func() {
			<-r.served       // the device died ...
			r.master.Close() // ... and with it the line
		}()
		d := ymodem.New(r.port, ymodem.Options{Send: ymodem.SendOptions{BlockTimeout: time.Second, Retries: 2}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, werr := d.Write(ctx, image("app.bin", next), 0, nil)
		cancel()
		if werr == nil && cut < secondEOT {
			t.Errorf("cut at byte %d: Write reported success", cut)
		}
		// Power on again from what is on disk.
		after, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cut < secondEOT {
			mustBoot(t, after, old)
		} else {
			mustBoot(t, after, next)
		}
		if names, _ := os.ReadDir(cfg.Dir); len(names) != 2 {
			t.Errorf("cut at byte %d: the flash holds %d files after power-on, want the state and one application", cut, len(names))
		}
	}
}

func TestDeviceRefusesAnImageTooLargeForItsFlash(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxImage = 10000
	old := randomImage(9000)
	r := startRig(t, cfg, nil)
	if err := r.dev.Install(old, Info{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{})
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := d.Write(ctx, image("big.bin", randomImage(10001)), 0, nil)
	if !errors.Is(err, ymodem.ErrCancelled) {
		t.Fatalf("Write: %v, want the device to cancel", err)
	}
	if flasher.IsTransient(err) {
		t.Fatalf("Write: %v is transient; a refused image must not be retried", err)
	}
	if err := d.Check(ctx, image("big.bin", nil)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("Check: %v, want the device's reason", err)
	}
	mustBoot(t, r.dev, old)
}

func TestDeviceChecksMCUbootImagesBeforeCommitting(t *testing.T) {
	dir := "../../testdata/mcuboot/"
	good, err := os.ReadFile(dir + "ed25519-basic.bin")
	if err != nil {
		t.Skipf("test vectors not found: %v", err)
	}
	bad, err := os.ReadFile(dir + "fail-hash-flipped-byte.bin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Inspect = MCUbootInspect
	r := startRig(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{})
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(ctx, image("ed25519-basic.bin", good), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(ctx, image("ed25519-basic.bin", good)); err != nil {
		t.Fatal(err)
	}
	_, err = d.Write(ctx, image("fail-hash-flipped-byte.bin", bad), 0, nil)
	if !errors.Is(err, ymodem.ErrCancelled) {
		t.Fatalf("Write of an image with a wrong hash: %v, want the device to refuse it", err)
	}
	mustBoot(t, r.dev, good)
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Components["app"] != "1.2.3+45" {
		t.Fatalf("identity %+v, want the MCUboot version of the installed image", id)
	}
}

// The tail of a block still on the wire when its sender stopped (the app was killed, or
// the device cancelled after a garbled block) reaches an idle device. It must not take
// the stray STX for a sender starting a batch and wait a minute for a header: it drops
// the tail and answers the next identify and the next flash at once.
func TestStrayBlockTailLeavesTheDeviceAnsweringAtOnce(t *testing.T) {
	next := randomImage(20000)
	r := startRig(t, testConfig(t), nil)
	tail := append([]byte{ymodem.STX, 7, ^byte(7)}, randomImage(600)...)
	if _, err := r.port.Write(tail); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ymodem.New(r.port, ymodem.Options{IdentifyTimeout: 1500 * time.Millisecond})
	id, err := d.Identify(ctx)
	if err != nil || id.HardwareID != "acme-x1" {
		t.Fatalf("identify after a stray block tail: %+v, %v; want the banner", id, err)
	}
	if _, err := d.Write(ctx, image("app.bin", next), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(ctx, image("app.bin", next)); err != nil {
		t.Fatal(err)
	}
	mustBoot(t, r.dev, next)
}

// A device that cancels because the line garbles every block says so in its verdict
// (cause=line), and the driver reports a link fault the engine retries, not a refusal.
func TestDeviceCancelOnABadLineIsRetryable(t *testing.T) {
	old := randomImage(5000)
	r := startRig(t, testConfig(t), func(rw io.ReadWriter) io.ReadWriter {
		return &noisyLine{ReadWriter: rw, every: 400}
	})
	if err := r.dev.Install(old, Info{Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The sender keeps trying longer than the device, so the device is the one to give up.
	d := ymodem.New(r.port, ymodem.Options{Send: ymodem.SendOptions{Retries: 30}})
	if id, err := d.Identify(ctx); err != nil || id.HardwareID != "acme-x1" {
		t.Fatalf("identify: %+v, %v", id, err)
	}
	_, err := d.Write(ctx, image("app.bin", randomImage(30000)), 0, nil)
	if !errors.Is(err, ymodem.ErrCancelled) || !strings.Contains(err.Error(), "bad blocks in a row") {
		t.Fatalf("Write: %v, want the device to cancel after bad blocks in a row", err)
	}
	if !flasher.IsTransient(err) {
		t.Fatalf("Write: %v is not transient; a cancel caused by the line must be retried", err)
	}
	mustBoot(t, r.dev, old)
}
