package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "recover", summary: "for support: find out what a stuck device answers, and flash it back", run: cmdRecover})
}

const recoverHelp = `
For a device that does not boot or does not answer as it should. recover probes PORT for
MCUboot serial recovery (SMP in the bootloader), a running MCUmgr application, or a
YMODEM bootloader, and says what state the device is in.

With --usb it asks a USB DFU device instead (the full build only: cgo and libusb), without
changing anything: DFU mode and waiting for an image, stopped in dfuERROR (the status code
explained), in the middle of a download that stopped, installed and waiting for a reset,
or its application running in run-time mode. An STM32 in its ROM DfuSe bootloader, or a
Zephyr/MCUboot board whose application does not boot but whose bootloader offers DFU, is
found this way. --usb auto takes the one connected DFU device (with BUNDLE: the one the
bundle fits, else the only one there).

With BUNDLE it then flashes that bundle's target for the device's hardware id through the
same engine as "fieldflash flash" (verified first, resumable): a DFU device in dfuERROR is
cleared with CLRSTATUS first, a stopped download is aborted, DfuSe resumes at the first
page not yet written. MCUboot serial recovery does not report the hardware id, and a DFU
device in DFU mode may enumerate with other ids than the bundle names: give it with
--hardware, as printed on the board's label.

If nothing answers, it says what to do next (which button to hold, which cable to check)
and exits 4.

Exit codes: 0 the device answers (and, with BUNDLE, was flashed), 1 refused, 2 usage,
3 environment (port, bundle, USB permissions), 4 nothing answers or the device failed,
5 interrupted.`

func cmdRecover(e *env, args []string) int {
	fs := newFlags(e, "recover", "--port PATH | --usb VID:PID[,SERIAL]|auto [BUNDLE.fwb] [options]", recoverHelp)
	port := fs.String("port", "", "the `PATH` of the serial port the device is on")
	usbDev := fs.String("usb", "", "a USB DFU device: `VID:PID[,SERIAL]` in hex (e.g. 0483:df11), or auto for the one connected DFU device")
	protocol := fs.String("protocol", "", "smp or ymodem (default: try both)")
	baud := fs.Int("baud", app.DefaultBaud, "baud rate of the port")
	hardware := fs.String("hardware", "", "the device's hardware id, for bootloaders that do not report it")
	target := fs.String("target", "", "the bundle's target to flash (default: the one for the hardware id)")
	jsonOut := fs.Bool("json", false, "write the state (and events) as JSON lines")
	demo := fs.Bool("demo", false, "trust the demo root only (demo bundles, virtual devices only)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if (*port == "") == (*usbDev == "") || fs.NArg() > 1 {
		app.Fprintln(e.stderr, "fieldflash recover: give the port or the USB device and at most one bundle, e.g. `fieldflash recover --port /dev/ttyACM0 acme-7.2.fwb` or `fieldflash recover --usb 0483:df11 acme-7.2.fwb`")
		return exitUsage
	}
	if *usbDev != "" {
		if err := app.CheckUSBSpec(*usbDev); err != nil {
			app.Fprintln(e.stderr, "fieldflash recover --usb:", err)
			return exitUsage
		}
		return recoverUSB(e, fs.Args(), *usbDev, *hardware, *target, *jsonOut, *demo)
	}
	switch *protocol {
	case "", "smp", "ymodem":
	default:
		app.Fprintf(e.stderr, "fieldflash recover: --protocol %q: use smp or ymodem\n", *protocol)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The bundle first: a bundle that does not verify is no reason to touch the device.
	var v *app.Verified
	var s *app.Session
	if fs.NArg() == 1 {
		var err error
		if *demo {
			if err := app.RequireVirtualPort(*port); err != nil {
				app.Fprintln(e.stderr, "✘ refused:", err)
				return exitRefused
			}
		}
		if s, err = app.OpenSession(*demo); err != nil {
			return reportEnv(e, *jsonOut, err)
		}
		if v, err = s.Verify(fs.Arg(0), app.VerifyOptions{}); err != nil {
			code := reportRefusal(e, *jsonOut, err)
			warnSession(e, s)
			return code
		}
	}

	rec, err := app.ProbeRecovery(ctx, *port, *baud, *protocol)
	if err != nil {
		if ctx.Err() != nil {
			app.Fprintln(e.stderr, "✘ interrupted")
			return exitCanceled
		}
		code := reportEnv(e, *jsonOut, err)
		app.Fprintf(e.stderr, "\n  Next: %s\n", app.SilentHint(*protocol, *port))
		return code
	}
	if !rec.Answered() {
		if *jsonOut {
			writeJSONLine(e.stdout, map[string]any{"ok": false, "exit": exitDevice, "port": *port, "state": rec.State, "code": app.CodeDeviceLost, "next": rec.Next})
		}
		app.Fprintf(e.stderr, "✘ %s\n\n  Next: %s\n", rec.Text, rec.Next)
		return exitDevice
	}
	id := rec.Identity
	if *jsonOut {
		writeJSONLine(e.stdout, map[string]any{"ok": true, "port": *port, "protocol": rec.Probe.Protocol, "state": rec.State, "device": id})
	} else {
		app.Fprintf(e.stdout, "device  %s\n", app.DescribeIdentity(id, *port))
		app.Fprintf(e.stdout, "state   %s\n", rec.Text)
	}
	if v == nil {
		if !*jsonOut {
			app.Fprintf(e.stdout, "\nTo flash it: fieldflash recover --port %s BUNDLE.fwb", *port)
			if id.HardwareID == "" {
				fmt.Fprint(e.stdout, " --hardware HARDWARE-ID")
			}
			app.Fprintln(e.stdout)
		}
		return exitOK
	}
	out := newFlashOutput(e, *jsonOut)
	out.verified = v
	code := out.finish(s.Recover(ctx, rec, app.FlashRequest{Bundle: v, Target: *target, Baud: *baud, Hardware: *hardware}, out.event))
	warnSession(e, s)
	return code
}

// recoverUSB is recover for a USB DFU device: the state the device reports, what to do
// next, and with a bundle the flash through the same engine as `fieldflash flash --usb`.
func recoverUSB(e *env, args []string, spec, hardware, target string, jsonOut, demo bool) int {
	if !app.USBAvailable {
		app.Fprintln(e.stderr, "fieldflash recover --usb:", app.ErrUSBNeedsFullBuild)
		return exitEnv
	}
	if demo {
		app.Fprintln(e.stderr, "✘ refused: demo bundles flash only virtual devices, not USB devices")
		return exitRefused
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var v *app.Verified
	var s *app.Session
	if len(args) == 1 {
		var err error
		if s, err = app.OpenSession(false); err != nil {
			return reportEnv(e, jsonOut, err)
		}
		if v, err = s.Verify(args[0], app.VerifyOptions{}); err != nil {
			code := reportRefusal(e, jsonOut, err)
			warnSession(e, s)
			return code
		}
	}
	rec, err := app.ProbeRecoveryUSB(ctx, spec, v)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			app.Fprintln(e.stderr, "✘ interrupted")
			return exitCanceled
		case app.CodeOfFlash(err) != "":
			if jsonOut {
				writeJSONLine(e.stdout, map[string]any{"ok": false, "exit": exitRefused, "code": app.ErrorCode(err), "error": err.Error(), "next": app.NextStep(err)})
			}
			app.Fprintln(e.stderr, "✘", err)
			return exitRefused
		}
		code := reportEnv(e, jsonOut, err)
		app.Fprintf(e.stderr, "\n  Next: %s\n", app.USBSilentHint(spec))
		return code
	}
	if !rec.Answered() {
		if jsonOut {
			writeJSONLine(e.stdout, map[string]any{"ok": false, "exit": exitDevice, "usb": spec, "state": rec.State, "code": app.CodeDeviceLost, "text": rec.Text, "next": rec.Next})
		}
		app.Fprintf(e.stderr, "✘ %s\n\n  Next: %s\n", rec.Text, rec.Next)
		return exitDevice
	}
	if jsonOut {
		writeJSONLine(e.stdout, map[string]any{"ok": true, "usb": rec.USBSpec, "port": rec.Port, "protocol": "dfu", "state": rec.State,
			"dfu": rec.DFU, "text": rec.Text, "next": rec.Next, "device": rec.USB.Info})
	} else {
		app.Fprintf(e.stdout, "device  %s\n", rec.Device())
		app.Fprintf(e.stdout, "state   %s\n", rec.Text)
		if d := rec.DFU; d != nil && d.Status != "" {
			app.Fprintf(e.stdout, "status  %s: %s\n", d.Status, d.StatusMeaning)
		}
	}
	if v == nil {
		if !jsonOut {
			app.Fprintf(e.stdout, "\nNext: %s\n", rec.Next)
		}
		return exitOK
	}
	out := newFlashOutput(e, jsonOut)
	out.verified = v
	code := out.finish(s.Recover(ctx, rec, app.FlashRequest{Bundle: v, Target: target, Hardware: hardware}, out.event))
	warnSession(e, s)
	return code
}
