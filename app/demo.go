package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/verify"
)

// DemoPull is where the demo pulls the SMP device's cable: host-to-device bytes, of which
// the upload's base64 console frames are most (48 KiB of image is about 68 KB on the line).
const DemoPull = 30000

// DemoDevice is one device of the demo and what happened to it.
type DemoDevice struct {
	Name     string           `json:"name"`
	Protocol string           `json:"protocol"`
	Port     string           `json:"port"`
	Before   string           `json:"before"`
	After    string           `json:"after"`
	Result   flasher.Result   `json:"result"`
	Bytes    int64            `json:"bytes"`
	Seconds  float64          `json:"transfer_seconds"`
	Rate     float64          `json:"rate"` // bytes per second over the transfer
	PulledAt int64            `json:"cable_pulled_at,omitempty"`
	Resumed  int64            `json:"resumed_from,omitempty"`
	Retries  int              `json:"retries"`
	Outcome  *flasher.Outcome `json:"outcome,omitempty"`
	Error    string           `json:"error,omitempty"`
	Faults   string           `json:"faults,omitempty"`
	// Intro says in a sentence what the device is.
	Intro     string `json:"-"`
	transfer  [2]time.Time
	lastBytes int64
}

// DemoObserver is told the demo's story: a face prints or draws it.
type DemoObserver interface {
	// Verifying: the demo bundle was written to path and is being verified.
	Verifying(path string)
	// Verified: the demo bundle verified.
	Verified(v *Verified)
	// Device: device i of n starts (Port, Before and Intro are set).
	Device(i, n int, d *DemoDevice, baud int)
	// Event: an event of the device's update.
	Event(ev Event)
	// DeviceDone: the device's update ended (d is filled in).
	DeviceDone(d *DemoDevice, r *FlashResult)
}

// DemoReport is what the demo did.
type DemoReport struct {
	Bundle   string // the demo bundle's path
	Verified *Verified
	Devices  []*DemoDevice
	Status   Status
}

// DemoBundlePath writes the built-in demo bundle to home/demo/demo.fwb and returns the
// path, so that what is verified is a real file a person can look at.
func DemoBundlePath(home string) (string, error) {
	path := filepath.Join(home, "demo", "demo.fwb")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("demo bundle %s: %v", path, err)
	}
	if err := os.WriteFile(path, assets.DemoBundle, 0o644); err != nil {
		return "", fmt.Errorf("demo bundle %s: %v", path, err)
	}
	return path, nil
}

// RunDemo runs fieldflash's whole job with nothing attached: it writes the built-in
// demo bundle to $FIELDFLASH_HOME/demo/demo.fwb and verifies it against the demo root
// (demo mode), starts two virtual devices behind simulated cables at baud (a
// Zephyr/MCUboot device speaking SMP and a classic YMODEM bootloader, both on 1.0.0) and
// flashes 1.1.0 onto each in turn. The SMP device's cable is pulled in the middle of the
// transfer and plugged back in; the update resumes where the device stopped. Demo state
// is kept apart and the devices start afresh on every run.
//
// The error is for what stopped the demo before its devices ran (a *VerifyError when the
// bundle was refused); a failed device is in the report.
func RunDemo(ctx context.Context, baud int, obs DemoObserver) (*DemoReport, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(home, "demo")
	st, err := NewDiskState(dir)
	if err != nil {
		return nil, err
	}
	path, err := DemoBundlePath(home)
	if err != nil {
		return nil, err
	}
	obs.Verifying(path)
	// The demo's work goes into the demo's own audit log, never into telemetry.
	ds := &Session{Home: dir, Demo: true, state: st, rec: newRecorder(home, dir, true)}
	defer ds.Close()
	began := time.Now()
	v, err := verify.VerifyFile(path, verify.Options{Roots: []verify.PinnedRoot{DemoRoot()}, DemoMode: true, State: st})
	ds.recordVerification(path, v, err, time.Since(began), verify.Options{})
	if err != nil {
		return nil, err
	}
	obs.Verified(v)

	// Fresh virtual devices on every run: the demo always shows 1.0.0 -> 1.1.0.
	devDir := filepath.Join(dir, "devices")
	journalDir := filepath.Join(dir, "journal")
	for _, d := range []string{devDir, journalDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	pull := []link.Fault{{Kind: link.Disconnect, Dir: link.HostToDevice, Offset: DemoPull, Duration: 1500 * time.Millisecond}}
	sims := []struct {
		dev *DemoDevice
		cfg VirtualConfig
	}{
		{&DemoDevice{Name: SimHardwareSMP, Protocol: "smp", Faults: link.FormatFaults(pull),
			Intro: "a Zephyr application with MCUmgr over its console and MCUboot below it (two slots, trial boot, confirm); the cable will be pulled after about 20 KiB"},
			VirtualConfig{Protocol: "smp", Baud: baud, Faults: pull, Seed: 1, State: filepath.Join(devDir, "smp.flash"),
				Version: "1.0.0", Counter: 1, Symlink: filepath.Join(dir, "ttySIM-smp")}},
		{&DemoDevice{Name: SimHardwareYMODEM, Protocol: "ymodem", Intro: "a classic serial bootloader that takes an image by YMODEM"},
			VirtualConfig{Protocol: "ymodem", Baud: baud, State: filepath.Join(devDir, "ymodem"),
				Version: "1.0.0", Counter: 1, Symlink: filepath.Join(dir, "ttySIM-ymodem")}},
	}
	rep := &DemoReport{Bundle: path, Verified: v, Status: StatusOK}
	for i, s := range sims {
		if ctx.Err() != nil {
			break
		}
		sim, err := StartVirtualDevice(s.cfg)
		if err != nil {
			return nil, err
		}
		d := s.dev
		d.Port = sim.Path()
		d.Before = sim.Running()
		rep.Devices = append(rep.Devices, d)
		obs.Device(i, len(sims), d, baud)
		req := FlashRequest{Bundle: v, Port: d.Port, Baud: baud, Protocol: d.Protocol, JournalDir: journalDir,
			Retry: flasher.RetryPolicy{Initial: 300 * time.Millisecond, Max: 2 * time.Second}}
		began := time.Now()
		res := runFlash(ctx, req, func(ev Event) {
			d.note(ev)
			obs.Event(ev)
		})
		ds.recordFlash(audit.KindFlash, req, res, time.Since(began))
		d.After = sim.Running()
		sim.Close()
		d.Retries = 0
		if o := res.Outcome; o != nil {
			d.Outcome, d.Result, d.Bytes, d.Retries = o, o.Result, o.Bytes, o.Retries
		}
		if res.Err != nil {
			d.Error = res.Err.Error()
		}
		for _, off := range res.Resumes {
			if off > 0 {
				d.Resumed = off
			}
		}
		if t := d.transfer[1].Sub(d.transfer[0]); t > 0 {
			d.Seconds = t.Seconds()
			d.Rate = float64(d.Bytes) / d.Seconds
		}
		if res.Status != StatusOK && (rep.Status == StatusOK || res.Status > rep.Status) {
			rep.Status = res.Status
		}
		obs.DeviceDone(d, res)
	}
	return rep, nil
}

// note follows a device's events for the summary: when the transfer ran, and where the
// cable was pulled.
func (d *DemoDevice) note(ev Event) {
	if ev.Step != flasher.StepTransfer {
		return
	}
	switch ev.Kind {
	case flasher.KindStepStart:
		d.transfer[0] = ev.Time
	case flasher.KindStepDone:
		d.transfer[1] = ev.Time
	case flasher.KindProgress:
		d.lastBytes = ev.Bytes
	case flasher.KindRetry:
		if d.PulledAt == 0 {
			d.PulledAt = d.lastBytes
		}
	}
}
