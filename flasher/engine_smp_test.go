//go:build unix

package flasher_test

// End to end: the engine flashes a real imgtool image through the smp driver over a real
// pseudo-terminal (opened with go.bug.st/serial, as the CLI opens a USB serial adapter)
// to the virtual MCUmgr device of sim/smpdev, whose MCUboot boots from the flash model of
// sim/flash. Nothing here is scripted: trial boot, swap and confirm are the simulator's.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

const mcubootVectors = "../testdata/mcuboot/"

// smpBundle writes the imgtool image name into a bundle-like file (after other bytes,
// at an offset) and returns the verdict verify gives on such a bundle.
func smpBundle(t testing.TB, dir, name, version string) (*verify.Verified, []byte) {
	t.Helper()
	img, err := os.ReadFile(mcubootVectors + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mcuboot.Parse(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	head := bytes.Repeat([]byte("metadata"), 64)
	path := filepath.Join(dir, "acme-"+version+".fwb")
	if err := os.WriteFile(path, append(append(head, img...), head...), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	return &verify.Verified{Bundle: path, Targets: []verify.Target{{
		Path: "app.bin", Length: int64(len(img)), SHA256: hex.EncodeToString(sum[:]), Offset: int64(len(head)),
		Meta: verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: version, Component: "app", Format: "mcuboot",
			Protocol: verify.ProtocolHints{Protocols: []string{"smp"}}},
		Image: &verify.ImageInfo{Format: "mcuboot", Version: version, ImageHash: hex.EncodeToString(m.ImageHash), Signed: m.Signed},
	}}}, m.ImageHash
}

// smpField is a virtual device on a pseudo-terminal. The device side holds the terminal
// open, so the port survives the app's process dying, as a USB serial adapter does.
type smpField struct {
	dev  *smpdev.Device
	port string
}

func newSMPField(t testing.TB, bytesPerSec float64) *smpField {
	t.Helper()
	return newSMPFieldWith(t, bytesPerSec, smpdev.Options{HardwareID: "acme-gw-r2"})
}

func newSMPFieldWith(t testing.TB, bytesPerSec float64, opt smpdev.Options) *smpField {
	t.Helper()
	fl, err := flash.Create(filepath.Join(t.TempDir(), "device.flash"), flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	factory, err := os.ReadFile(mcubootVectors + "ed25519-basic.bin") // 1.2.3+45
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Program(flash.Primary, 0, factory); err != nil {
		t.Fatal(err)
	}
	dev, err := smpdev.New(fl, opt)
	if err != nil {
		t.Fatal(err)
	}
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	var side io.ReadWriter = master
	if bytesPerSec > 0 {
		side = &slowLine{ReadWriter: master, bytesPerSec: bytesPerSec}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		smpdev.Serve(ctx, side, dev)
	}()
	t.Cleanup(func() {
		cancel()
		master.Close()
		tty.Close()
		<-done
	})
	return &smpField{dev: dev, port: tty.Name()}
}

// slowLine delivers what the host sends no faster than bytesPerSec: a pseudo-terminal
// does not enforce a baud rate, and the crash test needs time to kill mid-transfer.
type slowLine struct {
	io.ReadWriter
	bytesPerSec float64
}

func (s *slowLine) Read(b []byte) (int, error) {
	n, err := s.ReadWriter.Read(b[:min(len(b), 256)])
	time.Sleep(time.Duration(float64(n) / s.bytesPerSec * float64(time.Second)))
	return n, err
}

// connect opens the port as the app does, and starts the smp driver on it.
func (f *smpField) connect(wrap func(io.ReadWriter) io.ReadWriter) (flasher.Driver, error) {
	p, err := serial.Open(f.port, &serial.Mode{BaudRate: 115200})
	if err != nil {
		return nil, err
	}
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		p.Close()
		return nil, err
	}
	var rw io.ReadWriter = p
	if wrap != nil {
		rw = wrap(p)
	}
	return smp.New(rw, smp.Options{Timeout: time.Second}), nil
}

func (f *smpField) plan(t testing.TB, v *verify.Verified) (*flasher.Plan, flasher.Driver) {
	t.Helper()
	d, err := f.connect(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{
		Port:       f.port,
		HardwareID: "acme-gw-r2", // off the label: serial recovery does not say
		Device:     "acme-gw-r2/SN0042",
		Reconnect:  func(ctx context.Context) (flasher.Driver, error) { return f.connect(nil) },
		Retry:      flasher.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, d
}

func (f *smpField) wantRunning(t testing.TB, hash []byte) {
	t.Helper()
	d, err := f.connect(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	id, err := d.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range id.Slots {
		if s.Image == 0 && s.Slot == 0 {
			if !bytes.Equal(s.Hash, hash) || !s.Active || !s.Confirmed {
				t.Fatalf("slot 0 after the update: %+v", s)
			}
			return
		}
	}
	t.Fatalf("no slot 0 in %+v", id.Slots)
}

func TestFlashOverSerialConfirmsNewImage(t *testing.T) {
	f := newSMPField(t, 0)
	v, hash := smpBundle(t, t.TempDir(), "ecdsa-p256-basic.bin", "2.0.0")
	p, d := f.plan(t, v)
	j, err := flasher.OpenJournal(t.TempDir(), p.JournalKey())
	if err != nil {
		t.Fatal(err)
	}
	var steps []flasher.Step
	o, err := flasher.Run(context.Background(), p, d, j, func(e flasher.Event) {
		if e.Kind == flasher.KindStepDone {
			steps = append(steps, e.Step)
		}
	})
	if err != nil || o.Result != flasher.ResultConfirmed || o.Running != "2.0.0" {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	t.Logf("steps %v, %d bytes in %s", steps, o.Bytes, o.Duration)
	f.wantRunning(t, hash)
	if st := f.dev.Stats(); st.UploadBytes != p.Image.Size || st.Resets != 1 {
		t.Fatalf("device stats %+v for a %d-byte image", st, p.Image.Size)
	}
}

// pulledCable fails with EIO, as an unplugged USB serial adapter does, once the host has
// written after bytes.
type pulledCable struct {
	io.ReadWriter
	mu    sync.Mutex
	after int
}

func (c *pulledCable) Write(b []byte) (int, error) {
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

func (c *pulledCable) Read(b []byte) (int, error) {
	c.mu.Lock()
	pulled := c.after <= 0
	c.mu.Unlock()
	if pulled {
		return 0, syscall.EIO
	}
	return c.ReadWriter.Read(b)
}

func (c *pulledCable) Close() error { return c.ReadWriter.(io.Closer).Close() }

func TestFlashOverSerialResumesAfterCablePull(t *testing.T) {
	f := newSMPField(t, 0)
	v, hash := smpBundle(t, t.TempDir(), "ecdsa-p256-basic.bin", "2.0.0")
	p, first := f.plan(t, v)
	first.Close()
	// The first link dies 40 KB into the upload; the engine reconnects with a good one.
	d, err := f.connect(func(rw io.ReadWriter) io.ReadWriter { return &pulledCable{ReadWriter: rw, after: 40000} })
	if err != nil {
		t.Fatal(err)
	}
	var retries int
	o, err := flasher.Run(context.Background(), p, d, nil, func(e flasher.Event) {
		if e.Kind == flasher.KindRetry {
			retries++
		}
	})
	if err != nil || o.Result != flasher.ResultConfirmed || retries == 0 {
		t.Fatalf("outcome %+v (%d retries), err %v", o, retries, err)
	}
	f.wantRunning(t, hash)
	// The device's offset is the resume point: little is sent twice.
	if st := f.dev.Stats(); st.UploadBytes > p.Image.Size+8<<10 {
		t.Fatalf("device received %d bytes for a %d-byte image", st.UploadBytes, p.Image.Size)
	}
}

// TestFlashOverSerialResumesAfterSIGKILL kills the app's process (SIGKILL: no deferred
// writes, no last journal entry) in the middle of the upload, then runs the same update
// again: it reads the journal and continues from the device's offset.
func TestFlashOverSerialResumesAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second process")
	}
	f := newSMPField(t, 60000) // about 1.5 s for the whole image
	dir := t.TempDir()
	v, hash := smpBundle(t, dir, "ecdsa-p256-basic.bin", "2.0.0")
	journals := filepath.Join(dir, "journal")

	child := exec.Command(os.Args[0], "-test.run=^TestFlashProcessForKill$")
	child.Env = append(os.Environ(), "FIELDFLASH_TEST_CHILD=1", "FIELDFLASH_TEST_PORT="+f.port, "FIELDFLASH_TEST_BUNDLE="+v.Bundle, "FIELDFLASH_TEST_JOURNAL="+journals)
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	// Kill once the journal says 16 KiB are on the device.
	var entry flasher.JournalEntry
	deadline := time.After(20 * time.Second)
wait:
	for {
		select {
		case err := <-exited:
			t.Fatalf("the app finished before it was killed (%v):\n%s", err, childOut.String())
		case <-deadline:
			child.Process.Kill()
			t.Fatalf("no journal progress:\n%s", childOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		files, _ := filepath.Glob(filepath.Join(journals, "*.json"))
		if len(files) == 1 {
			if raw, err := os.ReadFile(files[0]); err == nil && json.Unmarshal(raw, &entry) == nil && entry.Acked >= 16<<10 {
				break wait
			}
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited

	p, d := f.plan(t, v)
	j, err := flasher.OpenJournal(journals, p.JournalKey())
	if err != nil {
		t.Fatal(err)
	}
	before := j.Load()
	if before == nil || before.Step != flasher.StepTransfer || before.Finished {
		t.Fatalf("journal after the kill: %+v", before)
	}
	o, err := flasher.Run(context.Background(), p, d, j, nil)
	if err != nil || o.Result != flasher.ResultConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if o.ResumedFrom < before.Acked || o.Bytes != p.Image.Size-o.ResumedFrom {
		t.Fatalf("resumed at %d (journal said %d), sent %d of %d", o.ResumedFrom, before.Acked, o.Bytes, p.Image.Size)
	}
	t.Logf("killed at journal offset %d; resumed at the device's offset %d", before.Acked, o.ResumedFrom)
	f.wantRunning(t, hash)
}

// TestFlashProcessForKill is the app process of TestFlashOverSerialResumesAfterSIGKILL.
func TestFlashProcessForKill(t *testing.T) {
	if os.Getenv("FIELDFLASH_TEST_CHILD") == "" {
		t.Skip("runs only as the child of TestFlashOverSerialResumesAfterSIGKILL")
	}
	f := &smpField{port: os.Getenv("FIELDFLASH_TEST_PORT")}
	v, _ := smpBundle(t, t.TempDir(), "ecdsa-p256-basic.bin", "2.0.0")
	v.Bundle = os.Getenv("FIELDFLASH_TEST_BUNDLE")
	p, d := f.plan(t, v)
	j, err := flasher.OpenJournal(os.Getenv("FIELDFLASH_TEST_JOURNAL"), p.JournalKey())
	if err != nil {
		t.Fatal(err)
	}
	j.Every = 4 << 10
	flasher.Run(context.Background(), p, d, j, nil)
}

// onPull runs pulled once, when the cable it wraps is pulled.
type onPull struct {
	*pulledCable
	once   sync.Once
	pulled func()
}

func (c *onPull) Write(b []byte) (int, error) {
	n, err := c.pulledCable.Write(b)
	if err != nil {
		c.once.Do(c.pulled)
	}
	return n, err
}

// MCUboot serial recovery writes the primary slot as it receives the image, so no check
// after the transfer can undo what was sent. A bundle rewritten on disk while the cable is
// out must not reach the slot: the resent image is the copy verified before the transfer.
func TestRecoveryNeverWritesABundleRewrittenDuringACablePull(t *testing.T) {
	f := newSMPFieldWith(t, 0, smpdev.Options{HardwareID: "acme-gw-r2", Recovery: true})
	v, hash := smpBundle(t, t.TempDir(), "ecdsa-p256-basic.bin", "2.0.0")
	p, first := f.plan(t, v)
	first.Close()
	if p.From.Mode != flasher.ModeRecovery {
		t.Fatalf("the device answers in mode %q, want serial recovery", p.From.Mode)
	}
	evil := make([]byte, v.Targets[0].Length)
	for i := range evil {
		evil[i] = 0xE5
	}
	d, err := f.connect(func(rw io.ReadWriter) io.ReadWriter {
		return &onPull{pulledCable: &pulledCable{ReadWriter: rw, after: 40000}, pulled: func() {
			// While the cable is out: the attacker rewrites the bundle, and the technician
			// lets go of the recovery button, so the next boot runs what the slot holds.
			bf, err := os.OpenFile(v.Bundle, os.O_RDWR, 0)
			if err != nil {
				t.Error(err)
				return
			}
			bf.WriteAt(evil, v.Targets[0].Offset)
			bf.Close()
			f.dev.SetRecovery(false)
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := flasher.Run(context.Background(), p, d, nil, nil)
	if err != nil || o.Result != flasher.ResultConfirmed || o.Retries == 0 {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	f.wantRunning(t, hash)
}
