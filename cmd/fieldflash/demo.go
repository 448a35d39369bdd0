package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/progress"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/verify"
)

func init() {
	register(&command{name: "demo", summary: "run the whole flow on the built-in demo bundle, no hardware needed", run: cmdDemo})
}

const demoHelp = `
Runs fieldflash's whole job with nothing attached: writes the built-in demo bundle to
$FIELDFLASH_HOME/demo/demo.fwb and verifies it against the demo root (trusted in demo mode
only), starts two virtual devices on pseudo-terminals behind a simulated 115200-baud cable,
a Zephyr/MCUboot device speaking SMP and a classic YMODEM bootloader, both on version
1.0.0, and flashes 1.1.0 onto each. The SMP device's cable is pulled in the middle of
the transfer and plugged back in; the update resumes where the device stopped. Demo state
is kept apart from real state ($FIELDFLASH_HOME/demo) and starts afresh on every run.

Exit codes: 0 done, 1 refused, 3 environment, 4 a virtual device failed, 5 interrupted.`

func demoRoot() verify.PinnedRoot {
	return verify.PinnedRoot{Name: assets.DemoRepository, Root: assets.DemoRoot, Demo: true}
}

// verifyEmbeddedDemo verifies the built-in demo bundle from a temporary copy.
func verifyEmbeddedDemo() (*verify.Verified, error) {
	f, err := os.CreateTemp("", "fieldflash-demo-*.fwb")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(assets.DemoBundle)
	if err := f.Close(); err != nil || werr != nil {
		return nil, fmt.Errorf("demo bundle %s: %v %v", f.Name(), werr, err)
	}
	return verify.VerifyFile(f.Name(), verify.Options{Roots: []verify.PinnedRoot{demoRoot()}, DemoMode: true})
}

// demoPull is where the demo pulls the SMP device's cable: host-to-device bytes, of which
// the upload's base64 console frames are most (48 KiB of image is about 68 KB on the line).
const demoPull = 30000

// demoDevice is one device of the demo and what happened to it.
type demoDevice struct {
	Name      string           `json:"name"`
	Protocol  string           `json:"protocol"`
	Port      string           `json:"port"`
	Before    string           `json:"before"`
	After     string           `json:"after"`
	Result    flasher.Result   `json:"result"`
	Bytes     int64            `json:"bytes"`
	Seconds   float64          `json:"transfer_seconds"`
	Rate      float64          `json:"rate"` // bytes per second over the transfer
	PulledAt  int64            `json:"cable_pulled_at,omitempty"`
	Resumed   int64            `json:"resumed_from,omitempty"`
	Retries   int              `json:"retries"`
	Outcome   *flasher.Outcome `json:"outcome,omitempty"`
	Error     string           `json:"error,omitempty"`
	Faults    string           `json:"faults,omitempty"`
	exit      int
	transfer  [2]time.Time
	lastBytes int64
}

func cmdDemo(e *env, args []string) int {
	fs := newFlags(e, "demo", "[--json] [--baud N]", demoHelp)
	jsonOut := fs.Bool("json", false, "print what happened as one JSON document (no progress bars)")
	baud := fs.Int("baud", 115200, "baud rate of the virtual cables (0: as fast as the pty goes)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	dir := filepath.Join(home, "demo")
	st, err := app.NewDiskState(dir)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	path := filepath.Join(dir, "demo.fwb")
	if err := os.WriteFile(path, assets.DemoBundle, 0o644); err != nil {
		return reportEnv(e, *jsonOut, fmt.Errorf("demo bundle %s: %v", path, err))
	}
	say := func(format string, a ...any) {
		if !*jsonOut {
			fmt.Fprintf(e.stdout, format, a...)
		}
	}
	say("fieldflash demo: verifying the demo bundle %s offline (demo root trusted in demo mode only)\n\n", path)
	v, err := verify.VerifyFile(path, verify.Options{Roots: []verify.PinnedRoot{demoRoot()}, DemoMode: true, State: st})
	if err != nil {
		return reportRefusal(e, *jsonOut, err)
	}
	if !*jsonOut {
		printVerdict(e.stdout, v)
	}

	// Fresh virtual devices on every run: the demo always shows 1.0.0 -> 1.1.0.
	devDir := filepath.Join(dir, "devices")
	journalDir := filepath.Join(dir, "journal")
	for _, d := range []string{devDir, journalDir} {
		if err := os.RemoveAll(d); err != nil {
			return reportEnv(e, *jsonOut, err)
		}
	}
	pull := []link.Fault{{Kind: link.Disconnect, Dir: link.HostToDevice, Offset: demoPull, Duration: 1500 * time.Millisecond}}
	sims := []struct {
		dev   *demoDevice
		cfg   simConfig
		intro string
	}{
		{&demoDevice{Name: simHardwareSMP, Protocol: "smp", Faults: link.FormatFaults(pull)},
			simConfig{Protocol: "smp", Baud: *baud, Faults: pull, Seed: 1, State: filepath.Join(devDir, "smp.flash"),
				Version: "1.0.0", Counter: 1, Symlink: filepath.Join(dir, "ttySIM-smp")},
			"a Zephyr application with MCUmgr over its console and MCUboot below it (two slots, trial boot, confirm); the cable will be pulled after about 20 KiB"},
		{&demoDevice{Name: simHardwareYMODEM, Protocol: "ymodem"},
			simConfig{Protocol: "ymodem", Baud: *baud, State: filepath.Join(devDir, "ymodem"),
				Version: "1.0.0", Counter: 1, Symlink: filepath.Join(dir, "ttySIM-ymodem")},
			"a classic serial bootloader that takes an image by YMODEM"},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var devices []*demoDevice
	code := exitOK
	for i, s := range sims {
		if ctx.Err() != nil {
			break
		}
		sim, err := startSim(s.cfg)
		if err != nil {
			return reportEnv(e, *jsonOut, err)
		}
		d := s.dev
		d.Port = sim.Path()
		d.Before = sim.Running()
		devices = append(devices, d)
		say("\n── device %d of %d: %s on %s, %s at %s\n   %s\n", i+1, len(sims), d.Name, d.Port, protoName(d.Protocol), baudText(*baud), s.intro)
		j := &flashJob{verified: v, port: d.Port, baud: *baud, protocol: d.Protocol, journalDir: journalDir,
			retry: flasher.RetryPolicy{Initial: 300 * time.Millisecond, Max: 2 * time.Second},
			out:   &flashOutput{e: e, quiet: *jsonOut, renderer: progress.New(e.stdout, progress.Auto), onEvent: d.note}}
		res := j.run(ctx)
		d.After = sim.Running()
		sim.Close()
		d.exit = res.Exit
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
		if res.Exit != exitOK {
			if !*jsonOut {
				out := newFlashOutput(e, false)
				out.finish(res)
			}
			if code == exitOK || res.Exit > code {
				code = res.Exit
			}
		}
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": code == exitOK, "exit": code, "verified": v, "devices": devices})
		return code
	}
	say("\n── summary\n")
	for _, d := range devices {
		say("  %-22s %s -> %s  %s", d.Name, d.Before, d.After, d.Result)
		if d.Bytes > 0 {
			say(", %s sent in %.1f s (%s/s)", progress.Bytes(d.Bytes), d.Seconds, progress.Bytes(int64(d.Rate)))
		}
		say("\n")
		if d.PulledAt > 0 {
			say("  %-22s cable pulled after %s acknowledged, plugged back in 1.5 s later; resumed from byte %d (%s), where the device had stopped\n", "", progress.Bytes(d.PulledAt), d.Resumed, progress.Bytes(d.Resumed))
		} else if d.Protocol == "ymodem" {
			say("  %-22s YMODEM cannot resume: a broken transfer starts again from byte 0\n", "")
		}
		if d.Error != "" {
			say("  %-22s %s\n", "", d.Error)
		}
	}
	if code == exitOK {
		say("\nBoth devices run 1.1.0. Try it by hand: `fieldflash sim smp --faults disconnect@20k:2s` in one terminal,\n`fieldflash flash %s --demo --port <the path it prints>` in another, and Ctrl-C in the middle.\n", path)
	}
	return code
}

// note follows a device's events for the summary: when the transfer ran, and where the
// cable was pulled.
func (d *demoDevice) note(ev flasher.Event) {
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
