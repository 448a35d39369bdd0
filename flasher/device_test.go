package flasher_test

// The scripted device in this file stands below the protocol boundary: it plays an
// MCUboot device (two slots, trial boots, revert on an unconfirmed reset) behind the
// flasher.Driver verbs, so the engine's state machine can be driven through every edge
// without framing. It is not a protocol: the end-to-end tests that flash real devices
// over pseudo-terminals come with the smp and ymodem packages (and engine_smp_test.go
// here, once flasher/smp and sim/smpdev exist).

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/fieldflash/fieldflash/flasher"
)

// device is the hardware: it outlives every link (driver) to it.
type device struct {
	mu sync.Mutex

	hw       string
	caps     flasher.Capabilities
	counter  *uint64
	versions map[[32]byte]string // what the image headers say, by image hash

	primary   []byte // the running image
	confirmed bool   // primary is permanent
	secondary []byte // upload target; holds the old image after a swap
	uploadFor [32]byte
	pending   bool // secondary is marked for a trial boot
	bootFails bool // the new image crashes at boot: the bootloader reverts at once
	silent    bool // the device does not answer (stuck, unplugged)
	recovery  bool // the bootloader runs (no Components, Mode recovery)
	classic   bool // a classic bootloader: no slots, copies and starts the image by itself
	hangAt    int64

	link     int // generation of the current link; a reset or a pull makes a new one
	dropOnRe bool
	chunk    int

	// hook runs at the start of every verb with its name and, for writes, the offset the
	// device acknowledged so far. It may inject an error.
	hook func(verb string, acked int64) error

	calls  []string
	writes []int64 // the from offset of every Write
}

func newDevice(old []byte, oldVersion string) *device {
	d := &device{
		hw:        "acme-gw-r2",
		caps:      flasher.Capabilities{Resume: true, Check: true, Test: true, Confirm: true, Revert: true, Reset: true},
		versions:  map[[32]byte]string{sha256.Sum256(old): oldVersion},
		primary:   old,
		confirmed: true,
		dropOnRe:  true,
		chunk:     256,
		hangAt:    -1,
	}
	return d
}

func (d *device) called(verb string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		if c == verb {
			n++
		}
	}
	return n
}

func (d *device) running() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.versions[sha256.Sum256(d.primary)]
}

// connect opens a link to the device, as Reconnect does after a reset re-enumerates USB.
func (d *device) connect() *scriptedDriver {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &scriptedDriver{dev: d, link: d.link}
}

// pull drops the link, as a cable pull does: the driver in use gets EIO from now on.
func (d *device) pull() { d.link++ }

// boot is what MCUboot does at reset: swap a pending image in for a trial boot, or swap
// an unconfirmed trial image back out.
func (d *device) boot() {
	switch {
	case d.pending:
		d.primary, d.secondary = d.secondary, d.primary
		d.pending, d.confirmed = false, false
		if d.bootFails {
			d.primary, d.secondary = d.secondary, d.primary
			d.confirmed = true
		}
	case !d.confirmed:
		d.primary, d.secondary = d.secondary, d.primary
		d.confirmed = true
	}
	if d.dropOnRe {
		d.link++
	}
}

type scriptedDriver struct {
	dev    *device
	link   int
	closed bool
}

var errLinkDown = &os.PathError{Op: "read", Path: "/dev/ttyACM0", Err: syscall.EIO}

// enter is the prologue of every verb: a dead link, a silent device, an injected fault.
func (s *scriptedDriver) enter(ctx context.Context, verb string, acked int64) error {
	d := s.dev
	d.calls = append(d.calls, verb)
	if s.closed || s.link != d.link {
		return errLinkDown
	}
	if d.silent {
		d.mu.Unlock()
		<-ctx.Done() // a request to a silent device times out
		d.mu.Lock()
		return ctx.Err()
	}
	if d.hook != nil {
		if err := d.hook(verb, acked); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *scriptedDriver) Protocol() string                   { return "smp" }
func (s *scriptedDriver) Capabilities() flasher.Capabilities { return s.dev.caps }

func (s *scriptedDriver) Identify(ctx context.Context) (*flasher.Identity, error) {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "identify", 0); err != nil {
		return nil, err
	}
	id := &flasher.Identity{Protocol: "smp", HardwareID: d.hw, Mode: "application", ReleaseCounter: d.counter, BufferSize: d.chunk}
	if d.recovery {
		id.Mode = "recovery"
	}
	if d.classic {
		id.Components = map[string]string{"app": d.versions[sha256.Sum256(d.primary)]}
		return id, nil
	}
	h0 := sha256.Sum256(d.primary)
	id.Slots = append(id.Slots, flasher.Slot{Image: 0, Slot: 0, Version: d.versions[h0], Hash: h0[:], Active: true, Bootable: true, Confirmed: d.confirmed, Size: 64 << 10})
	if len(d.secondary) > 0 {
		h1 := sha256.Sum256(d.secondary)
		id.Slots = append(id.Slots, flasher.Slot{Image: 0, Slot: 1, Version: d.versions[h1], Hash: h1[:], Pending: d.pending, Bootable: true, Size: 64 << 10})
	} else {
		id.Slots = append(id.Slots, flasher.Slot{Image: 0, Slot: 1, Size: 64 << 10})
	}
	return id, nil
}

func (s *scriptedDriver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "resume-offset", 0); err != nil {
		return 0, err
	}
	if d.uploadFor != img.SHA256 {
		return 0, nil
	}
	return int64(len(d.secondary)), nil
}

func (s *scriptedDriver) Write(ctx context.Context, img *flasher.Image, from int64, progress func(int64)) (int64, error) {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, from)
	acked := int64(len(d.secondary))
	if d.uploadFor != img.SHA256 {
		acked = 0
	}
	if err := s.enter(ctx, "write", acked); err != nil {
		return acked, err
	}
	if from == 0 {
		d.secondary, d.uploadFor, d.pending = nil, img.SHA256, false
	} else if from != acked {
		return acked, fmt.Errorf("device: upload offset %d, expected %d", from, acked)
	}
	buf := make([]byte, d.chunk)
	for off := from; off < img.Size; {
		n := min(int64(d.chunk), img.Size-off)
		if _, err := img.Data.ReadAt(buf[:n], off); err != nil {
			return off, err
		}
		if d.hook != nil {
			if err := d.hook("write-chunk", off); err != nil {
				return off, err
			}
		}
		if s.link != d.link {
			return off, errLinkDown
		}
		if off == d.hangAt {
			// the device hangs mid-upload until the host gives up, then recovers
			d.hangAt = -1
			d.mu.Unlock()
			<-ctx.Done()
			d.mu.Lock()
			return off, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return off, err
		}
		d.secondary = append(d.secondary, buf[:n]...)
		off += n
		d.mu.Unlock()
		progress(off)
		d.mu.Lock()
	}
	if d.classic {
		d.primary, d.secondary = d.secondary, nil
	}
	return img.Size, nil
}

func (s *scriptedDriver) Check(ctx context.Context, img *flasher.Image) error {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "check", 0); err != nil {
		return err
	}
	if sha256.Sum256(d.secondary) != img.SHA256 {
		return errors.New("device: slot 1 hash differs from the image")
	}
	return nil
}

func (s *scriptedDriver) Activate(ctx context.Context, img *flasher.Image) error {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "activate", 0); err != nil {
		return err
	}
	if sha256.Sum256(d.secondary) != img.SHA256 {
		return errors.New("device: no such image in slot 1")
	}
	d.pending = true
	return nil
}

func (s *scriptedDriver) Confirm(ctx context.Context, img *flasher.Image) error {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "confirm", 0); err != nil {
		return err
	}
	if sha256.Sum256(d.primary) != img.SHA256 {
		return errors.New("device: the running image is not the one to confirm")
	}
	d.confirmed = true
	return nil
}

func (s *scriptedDriver) Revert(ctx context.Context) error {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "revert", 0); err != nil {
		return err
	}
	// Mark the previous image (now in slot 1) for the next boot, permanently.
	d.primary, d.secondary = d.secondary, d.primary
	d.confirmed = true
	return nil
}

func (s *scriptedDriver) Reset(ctx context.Context) error {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.enter(ctx, "reset", 0); err != nil {
		return err
	}
	d.boot()
	return nil
}

func (s *scriptedDriver) Close() error {
	s.closed = true
	return nil
}
