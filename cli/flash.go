package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/cli/progress"
)

func init() {
	register(&command{name: "flash", summary: "verify a bundle and update the device on a port; rerun to resume", run: cmdFlash})
}

const flashHelp = `
Verifies BUNDLE offline (as "fieldflash verify" does), opens the port, asks the device what
it is, picks the target that fits it (hardware id, release counter, requirements, slot
size) and takes it through the update: transfer, check, trial boot, reset, health probe,
confirm. The device keeps running its current image until the new one has booted and
answered; if anything fails it goes back to the old one.

A pulled cable is retried with backoff and the transfer continues where the device stopped.
Ctrl-C stops cleanly (exit 5); a journal under $FIELDFLASH_HOME/journal and the device's
own offset let the same command, run again, resume where it stopped.

Without --protocol the port is probed: SMP (MCUmgr) first, then a YMODEM bootloader.

With --usb the device is a USB DFU 1.1 or DfuSe device (the full build only: cgo and
libusb). A device in its application's run-time mode is detached into DFU mode first.
The download goes in wTransferSize blocks; DfuSe devices get only the pages the image
covers erased. The image is read back where the device can upload, otherwise the device's
own check is relied on, and the output says which. A rerun after an interruption resumes
a DfuSe device at the first page not yet written; plain DFU has no addressing and starts
again from byte 0. --usb auto picks the one connected DFU device the bundle fits (by its
usb_vendor/usb_product hints or the DFU file's suffix).

Exit codes: 0 updated (or already current), 1 refused (bundle, wrong device, rollback;
the device was not written), 2 usage, 3 environment (bundle, port, $FIELDFLASH_HOME),
4 the device failed or stopped answering (run the same command again to resume, or see
the hint), 5 interrupted (run the same command again to resume).`

func cmdFlash(e *env, args []string) int {
	fs := newFlags(e, "flash", "BUNDLE.fwb --port PATH | --usb VID:PID[,SERIAL]|auto [options]", flashHelp)
	port := fs.String("port", "", "the `PATH` of the serial port the device is on, e.g. /dev/ttyACM0 or COM4 (fieldflash devices lists them)")
	usbDev := fs.String("usb", "", "flash a USB DFU device: `VID:PID[,SERIAL]` in hex (e.g. 0483:df11), or auto for the one connected DFU device the bundle fits")
	hardware := fs.String("hardware", "", "the device's hardware `ID`, for devices that do not report it (stock Zephyr, MCUboot serial recovery) and DFU devices the bundle's USB ids do not name")
	protocol := fs.String("protocol", "", "smp or ymodem (default: probe the port)")
	baud := fs.Int("baud", app.DefaultBaud, "baud rate of the port")
	target := fs.String("target", "", "the bundle's target to flash (default: the one that fits the device)")
	jsonOut := fs.Bool("json", false, "write events and the result as JSON lines (for scripts)")
	demo := fs.Bool("demo", false, "trust the demo root only (demo bundles, virtual devices only)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 || (*port == "") == (*usbDev == "") {
		app.Fprintln(e.stderr, "fieldflash flash: give one bundle and either the port or the USB device, e.g. `fieldflash flash acme-7.2.fwb --port /dev/ttyACM0` or `fieldflash flash acme-7.2.fwb --usb 0483:df11`")
		return exitUsage
	}
	if *usbDev != "" {
		if err := app.CheckUSBSpec(*usbDev); err != nil {
			app.Fprintln(e.stderr, "fieldflash flash --usb:", err)
			return exitUsage
		}
		if !app.USBAvailable {
			app.Fprintln(e.stderr, "fieldflash flash --usb:", app.ErrUSBNeedsFullBuild)
			return exitEnv
		}
		if *demo {
			app.Fprintln(e.stderr, "✘ refused: demo bundles flash only virtual devices, not USB devices")
			return exitRefused
		}
	}
	if *protocol != "" && *protocol != "smp" && *protocol != "ymodem" {
		app.Fprintf(e.stderr, "fieldflash flash: --protocol %q: use smp or ymodem\n", *protocol)
		return exitUsage
	}
	if *demo {
		if err := app.RequireVirtualPort(*port); err != nil {
			app.Fprintln(e.stderr, "✘ refused:", err)
			return exitRefused
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := app.OpenSession(*demo)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	v, err := s.Verify(fs.Arg(0), app.VerifyOptions{})
	if err != nil {
		code := reportRefusal(e, *jsonOut, err)
		warnSession(e, s)
		return code
	}
	out := newFlashOutput(e, *jsonOut)
	out.verified = v
	res := s.Flash(ctx, app.FlashRequest{Bundle: v, Target: *target, Port: *port, Baud: *baud, Protocol: *protocol, USB: *usbDev, Hardware: *hardware}, out.event)
	code := out.finish(res)
	warnSession(e, s)
	return code
}

// flashOutput is the CLI's printer of a flash session: text and a progress bar or lines
// for people, JSON lines for scripts.
type flashOutput struct {
	e        *env
	json     bool
	quiet    bool // the demo's --json: nothing but the final document
	renderer *progress.Renderer
	// verified, when set, is announced when the session begins on the device.
	verified *app.Verified
}

func newFlashOutput(e *env, jsonOut bool) *flashOutput {
	mode := progress.Auto
	if jsonOut {
		mode = progress.JSON
	}
	return &flashOutput{e: e, json: jsonOut, renderer: progress.New(e.stdout, mode)}
}

func (o *flashOutput) say(format string, a ...any) {
	if o.json || o.quiet {
		return
	}
	app.Fprintf(o.e.stdout, format, a...)
}

// event prints one event of app's flash session.
func (o *flashOutput) event(ev app.Event) {
	switch ev.Kind {
	case app.KindBegin:
		if v := o.verified; v != nil {
			o.say("✔ %s verified (repository %s, root v%d)\n", v.Bundle, v.Repository, v.RootVersion)
		}
	case app.KindIdentified:
		o.say("device  %s\n", app.DescribeIdentity(ev.Identity, ev.Port))
	case app.KindPlanned:
		p := ev.Plan
		o.say("plan    %s %s (release counter %d, %s) -> image %d over %s\n", p.Target, p.Version,
			p.ReleaseCounter, progress.Bytes(p.Size), p.Slot, strings.ToUpper(p.Protocol))
		if !o.json && !o.quiet {
			for _, n := range p.Notes {
				printLines(o.e.stdout, "note    ", "        ", n)
			}
		}
	case app.KindAnomaly:
		// Before anything is planned or written: the technician may stop here.
		if o.quiet {
			return
		}
		if o.json {
			writeJSONLine(o.e.stdout, map[string]any{"time": ev.Time, "kind": ev.Kind, "message": ev.Message, "warning": ev.Warning})
			return
		}
		fmt.Fprintf(o.e.stderr, "⚠ %s\n", clean(ev.Message))
	case app.KindResuming:
		o.say("resume  an earlier run stopped at %s with %s acknowledged; continuing from the device's own offset\n", ev.Earlier.Step, progress.Bytes(ev.Earlier.Acked))
	case app.KindNote:
		// A line of the session's own among the engine's events; not in JSON: scripts get
		// only the engine's event kinds.
		if o.json || o.quiet || o.renderer == nil {
			return
		}
		o.renderer.Event(ev.Event)
	default:
		if o.quiet {
			return
		}
		o.renderer.Event(ev.Event)
	}
}

// finish prints the result and returns the exit code.
func (o *flashOutput) finish(r *app.FlashResult) int {
	exit := int(r.Status)
	if o.json {
		doc := map[string]any{"ok": exit == exitOK, "exit": exit, "port": r.Port, "protocol": r.Protocol}
		if r.Before != nil {
			doc["device"] = r.Before
		}
		if r.Outcome != nil {
			doc["outcome"] = r.Outcome
		}
		if r.Err != nil {
			doc["error"] = r.Err.Error()
			doc["code"] = app.ErrorCode(r.Err)
			if next := app.NextStep(r.Err); next != "" {
				doc["next"] = next
			}
		}
		writeJSONLine(o.e.stdout, doc)
		if r.Err != nil {
			app.Fprintln(o.e.stderr, "fieldflash:", r.Err)
		}
		return exit
	}
	switch {
	case exit == exitOK && r.Outcome != nil:
		oc := r.Outcome
		switch oc.Result {
		case app.ResultAlreadyCurrent:
			app.Fprintf(o.e.stdout, "✔ the device already runs %s %s; nothing to do\n", oc.Target, oc.Version)
		default:
			app.Fprintf(o.e.stdout, "✔ %s on %s now runs %s (%s; was %s)\n", r.Hardware, r.Port, oc.Version, oc.Result, r.RunningBefore())
		}
	case exit == exitCanceled:
		if r.Outcome != nil && !o.quiet {
			app.Fprintf(o.e.stderr, "✘ interrupted during %s\n", r.Outcome.Step)
		} else {
			app.Fprintln(o.e.stderr, "✘ interrupted:", errText(r.Err))
		}
		app.Fprintln(o.e.stderr, "  "+r.AfterStop())
	case exit == exitRefused:
		app.Fprintln(o.e.stderr, "✘ refused:", o.reason(r))
		if r.Outcome == nil || r.Outcome.Bytes == 0 {
			app.Fprintln(o.e.stderr, "  nothing was written to the device")
		}
	default:
		app.Fprintln(o.e.stderr, "✘", o.reason(r))
		if exit == exitDevice {
			app.Fprintln(o.e.stderr, "  run the same command again to resume once the device answers")
		}
	}
	return exit
}

// reason is the error for stderr. When the run's outcome line already printed it with
// its next step (the progress output), stderr gets the short form.
func (o *flashOutput) reason(r *app.FlashResult) string {
	var fe *app.FlashError
	if r.Outcome != nil && !o.quiet && errors.As(r.Err, &fe) {
		return fmt.Sprintf("%s (%s at %s)", r.Outcome.Result, fe.Code, r.Outcome.Step)
	}
	return errText(r.Err)
}

func errText(err error) string {
	if err == nil {
		return "stopped"
	}
	return err.Error()
}
