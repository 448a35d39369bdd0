package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/cli/progress"
)

func init() {
	register(&command{name: "demo", summary: "run the whole flow on the built-in demo bundle, no hardware needed", run: cmdDemo})
}

const demoHelp = `
Runs fieldflash's whole job with nothing attached. With a display (and a build with
the desktop app) it opens the window in demo mode: two virtual devices on 1.0.0 and the
demo bundle open, ready to verify and flash, with a button that pulls a virtual cable in
the middle of a transfer. Without a display, with --json or --terminal, it runs in the
terminal: it writes the built-in demo bundle to
$FIELDFLASH_HOME/demo/demo.fwb and verifies it against the demo root (trusted in demo mode
only), starts two virtual devices on pseudo-terminals behind a simulated 115200-baud cable,
a Zephyr/MCUboot device speaking SMP and a classic YMODEM bootloader, both on version
1.0.0, and flashes 1.1.0 onto each. The SMP device's cable is pulled in the middle of
the transfer and plugged back in; the update resumes where the device stopped. Demo state
is kept apart from real state ($FIELDFLASH_HOME/demo) and starts afresh on every run.

Exit codes: 0 done, 1 refused, 3 environment, 4 a virtual device failed, 5 interrupted.`

func cmdDemo(e *env, args []string) int {
	fs := newFlags(e, "demo", "[--json] [--baud N]", demoHelp)
	jsonOut := fs.Bool("json", false, "print what happened as one JSON document (no progress bars)")
	baud := fs.Int("baud", 115200, "baud rate of the virtual cables (0: as fast as the pty goes)")
	smpBaud := fs.Int("smp-baud", 0, "window only: baud rate of the SMP device's cable (default --baud)")
	terminal := fs.Bool("terminal", false, "run in the terminal even when a display is there")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if OpenWindow != nil && HasDisplay() && !*jsonOut && !*terminal {
		w := Window{Demo: true, SMPBaud: *baud, YMODEMBaud: *baud}
		if *smpBaud > 0 {
			w.SMPBaud = *smpBaud
		}
		return OpenWindow(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &demoPrinter{e: e, json: *jsonOut,
		out: &flashOutput{e: e, quiet: *jsonOut, renderer: progress.New(e.stdout, progress.Auto)}}
	rep, err := app.RunDemo(ctx, *baud, p)
	if err != nil {
		return reportRefusal(e, *jsonOut, err)
	}
	code := int(rep.Status)
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": code == exitOK, "exit": code, "verified": rep.Verified, "devices": rep.Devices})
		return code
	}
	say := p.say
	say("\n── summary\n")
	for _, d := range rep.Devices {
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
		say("\nBoth devices run 1.1.0. Try it by hand: `fieldflash sim smp --faults disconnect@20k:2s` in one terminal,\n`fieldflash flash %s --demo --port <the path it prints>` in another, and Ctrl-C in the middle.\n", rep.Bundle)
	}
	return code
}

// demoPrinter is the CLI's printer of app's demo: the verdict, one section per device
// with its progress, then (in cmdDemo) the summary.
type demoPrinter struct {
	e    *env
	json bool
	out  *flashOutput
}

func (p *demoPrinter) say(format string, a ...any) {
	if !p.json {
		app.Fprintf(p.e.stdout, format, a...)
	}
}

func (p *demoPrinter) Verifying(path string) {
	p.say("fieldflash demo: verifying the demo bundle %s offline (demo root trusted in demo mode only)\n\n", path)
}

func (p *demoPrinter) Verified(v *app.Verified) {
	if !p.json {
		printVerdict(p.e.stdout, v)
	}
}

func (p *demoPrinter) Device(i, n int, d *app.DemoDevice, baud int) {
	p.say("\n── device %d of %d: %s on %s, %s at %s\n   %s\n", i+1, n, d.Name, d.Port, app.ProtocolName(d.Protocol), app.BaudText(baud), d.Intro)
}

func (p *demoPrinter) Event(ev app.Event) { p.out.event(ev) }

func (p *demoPrinter) DeviceDone(d *app.DemoDevice, r *app.FlashResult) {
	if r.Status != app.StatusOK && !p.json {
		newFlashOutput(p.e, false).finish(r)
	}
}
