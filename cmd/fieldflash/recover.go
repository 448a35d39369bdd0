package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
)

func init() {
	register(&command{name: "recover", summary: "for support: find out what a stuck device answers, and flash it back", run: cmdRecover})
}

const recoverHelp = `
For a device that does not boot or does not answer as it should. recover probes PORT for
MCUboot serial recovery (SMP in the bootloader), a running MCUmgr application, or a
YMODEM bootloader, and says what state the device is in.

With BUNDLE it then flashes that bundle's target for the device's hardware id through the
same engine as "fieldflash flash" (verified first, resumable). MCUboot serial recovery
does not report the hardware id: give it with --hardware, as printed on the board's label.

If nothing answers, it says what to do next (which button to hold, which cable to check)
and exits 4.

Exit codes: 0 the device answers (and, with BUNDLE, was flashed), 1 refused, 2 usage,
3 environment (port, bundle), 4 nothing answers or the device failed, 5 interrupted.`

func cmdRecover(e *env, args []string) int {
	fs := newFlags(e, "recover", "--port PATH [BUNDLE.fwb] [options]", recoverHelp)
	port := fs.String("port", "", "the `PATH` of the serial port the device is on")
	protocol := fs.String("protocol", "", "smp or ymodem (default: try both)")
	baud := fs.Int("baud", serial.DefaultBaud, "baud rate of the port")
	hardware := fs.String("hardware", "", "the device's hardware id, for bootloaders that do not report it")
	target := fs.String("target", "", "the bundle's target to flash (default: the one for the hardware id)")
	jsonOut := fs.Bool("json", false, "write the state (and events) as JSON lines")
	demo := fs.Bool("demo", false, "also trust the demo root (demo bundles, virtual devices only)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if *port == "" || fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "fieldflash recover: give the port and at most one bundle, e.g. `fieldflash recover --port /dev/ttyACM0 acme-7.2.fwb`")
		return exitUsage
	}
	var order []string
	switch *protocol {
	case "":
	case "smp", "ymodem":
		order = []string{*protocol}
	default:
		fmt.Fprintf(e.stderr, "fieldflash recover: --protocol %q: use smp or ymodem\n", *protocol)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The bundle first: a bundle that does not verify is no reason to touch the device.
	var v *verify.Verified
	var s *services
	if fs.NArg() == 1 {
		var err error
		if *demo {
			if err := requireVirtualPort(*port); err != nil {
				fmt.Fprintln(e.stderr, "✘ refused:", err)
				return exitRefused
			}
		}
		if s, err = openServices(*demo); err != nil {
			return reportEnv(e, *jsonOut, err)
		}
		opts := verify.Options{}
		s.apply(&opts)
		if v, err = verify.VerifyFile(fs.Arg(0), opts); err != nil {
			return reportRefusal(e, *jsonOut, err)
		}
	}

	pr, err := probePort(ctx, *port, *baud, order)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "✘ interrupted")
			return exitCanceled
		}
		code := reportEnv(e, *jsonOut, err)
		fmt.Fprintf(e.stderr, "\n  Next: %s\n", silentHint(*protocol, *port))
		return code
	}
	if pr.Protocol == "" {
		hint := silentHint(*protocol, *port)
		if *jsonOut {
			writeJSONLine(e.stdout, map[string]any{"ok": false, "exit": exitDevice, "port": *port, "state": "silent", "code": flasher.CodeDeviceLost, "next": hint})
		}
		fmt.Fprintf(e.stderr, "✘ nothing answers on %s (tried %s)\n\n  Next: %s\n", *port, strings.Join(protoNames(order), " and "), hint)
		return exitDevice
	}
	id := pr.Identity
	state := deviceState(id)
	if *jsonOut {
		writeJSONLine(e.stdout, map[string]any{"ok": true, "port": *port, "protocol": pr.Protocol, "state": state, "device": id})
	} else {
		fmt.Fprintf(e.stdout, "device  %s\n", describeIdentity(id, *port))
		fmt.Fprintf(e.stdout, "state   %s\n", stateText(state, id))
	}
	if v == nil {
		if !*jsonOut {
			fmt.Fprintf(e.stdout, "\nTo flash it: fieldflash recover --port %s BUNDLE.fwb", *port)
			if id.HardwareID == "" {
				fmt.Fprint(e.stdout, " --hardware HARDWARE-ID")
			}
			fmt.Fprintln(e.stdout)
		}
		return exitOK
	}
	hw := *hardware
	if id.HardwareID == "" && hw == "" {
		ids := bundleHardware(v, pr.Protocol)
		err := &flasher.Error{Code: flasher.CodeHardware, Thing: "device on " + *port,
			Reason: "the bootloader does not report its hardware id",
			Next:   fmt.Sprintf("read it from the board's label and pass --hardware; this bundle has firmware for %s", strings.Join(ids, ", "))}
		out := newFlashOutput(e, *jsonOut)
		return out.finish(&flashResult{Port: *port, Protocol: pr.Protocol, Before: id, Err: err, Exit: exitRefused})
	}
	out := newFlashOutput(e, *jsonOut)
	out.say("✔ %s verified (repository %s, root v%d)\n", v.Bundle, v.Repository, v.RootVersion)
	j := &flashJob{verified: v, target: *target, port: *port, baud: *baud, protocol: pr.Protocol, hardware: hw,
		journalDir: filepath.Join(s.home, "journal"), out: out}
	return out.finish(j.run(ctx))
}

// deviceState names what a probe found, for people and for --json.
func deviceState(id *flasher.Identity) string {
	switch {
	case id.Protocol == "smp" && id.Mode == flasher.ModeRecovery:
		return "mcuboot-serial-recovery"
	case id.Protocol == "smp":
		return "application"
	case id.Protocol == "ymodem" && id.HardwareID == "":
		return "bootloader-waiting"
	}
	return "bootloader"
}

func stateText(state string, id *flasher.Identity) string {
	switch state {
	case "mcuboot-serial-recovery":
		s := "MCUboot serial recovery: the bootloader runs and waits for an image, which goes straight into the primary slot"
		if v := runningVersion(id); v != "unknown" {
			s += "; the primary slot holds " + v
		} else {
			s += "; the primary slot holds no bootable image"
		}
		return s
	case "application":
		return "the application runs and answers MCUmgr: nothing is stuck; `fieldflash flash` updates it the normal way (trial boot, confirm)"
	case "bootloader-waiting":
		return "a bootloader asks for a file (YMODEM) but prints no banner: it takes an image; power-cycle the device afterwards"
	}
	if v := runningVersion(id); v != "unknown" && v != "" {
		return "the YMODEM bootloader waits for an image; its application is " + v
	}
	return "the YMODEM bootloader waits for an image; it holds no application"
}

func bundleHardware(v *verify.Verified, protocol string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range v.Targets {
		ok := len(t.Meta.Protocol.Protocols) == 0
		for _, p := range t.Meta.Protocol.Protocols {
			ok = ok || p == protocol
		}
		if !ok {
			continue
		}
		for _, h := range t.Meta.HardwareIDs {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

func protoNames(order []string) []string {
	if len(order) == 0 {
		order = []string{"smp", "ymodem"}
	}
	out := make([]string, len(order))
	for i, p := range order {
		out[i] = protoName(p)
	}
	return out
}

// silentHint is the next step when nothing answers, in the words of the protocol's
// hardware: the engine's hint where the protocol is known.
func silentHint(protocol, port string) string {
	if protocol == "smp" || protocol == "ymodem" {
		return flasher.RecoveryHint(protocol, port)
	}
	return fmt.Sprintf("Check that the cable is seated (a data cable, not a charge-only one) and the device is powered. "+
		"For an MCUboot device, hold the BOOT (recovery) button while pressing RESET; for a classic bootloader, power-cycle it while holding its UPDATE key. "+
		"Then run `fieldflash recover --port %s` again", port)
}
