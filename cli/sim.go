package cli

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "sim", summary: "run a virtual SMP or YMODEM device on a pseudo-terminal", run: cmdSim})
}

const simHelp = `
Starts a virtual device behind a simulated serial cable (a pseudo-terminal) and prints the
path to open, e.g. with "fieldflash flash BUNDLE --port PATH". It runs until Ctrl-C.

  smp     a Zephyr application with MCUmgr over the console and MCUboot below it
          (two slots, trial boot, confirm, revert; --recovery holds the recovery button)
  ymodem  a classic serial bootloader that takes an image by YMODEM

--profile makes the device answer as named upstream firmware in its default configuration
(zephyr: stock Zephyr MCUmgr; zephyr-tuned: params, info, a 4 KiB buffer and the raw UART
transport; mcuboot: stock MCUboot serial recovery; ymodem), and --part gives it a flash
part's erase, program, boot and swap times and a UART that loses bytes while the flash
stalls the CPU (nrf52840, stm32f4). --usb-cdc puts it behind a USB CDC-ACM port instead.
--list-profiles lists them; docs/devices.md says what each follows.

The device's flash lives in --state (default $FIELDFLASH_HOME/sim/smp.flash or
$FIELDFLASH_HOME/sim/ymodem.flash/), so a restarted simulator keeps what was flashed; a new
state starts with application --version and release counter --counter. --faults makes the
cable misbehave (grammar in docs/simulator.md), e.g. "disconnect@20k:2s,drop@30000:16".
The device is announced under $FIELDFLASH_HOME/sim/ so "fieldflash devices" lists it.

Exit codes: 0 stopped by Ctrl-C, 2 usage, 3 the state or the pseudo-terminal failed.`

func cmdSim(e *env, args []string) int {
	fs := newFlags(e, "sim", "smp|ymodem [options]", simHelp)
	baud := fs.Int("baud", 115200, "pace the virtual cable at this baud rate (0: as fast as the pty goes)")
	faults := fs.String("faults", "", "`SPEC` of faults on the cable, e.g. disconnect@20k:2s,drop@4096 (docs/simulator.md)")
	seed := fs.Uint64("seed", 1, "seed for random faults and flipped bits")
	state := fs.String("state", "", "the `FILE` holding the device's flash (default under $FIELDFLASH_HOME/sim/)")
	hardware := fs.String("hardware", "", "hardware id the device reports (default fieldflash-sim-smp or fieldflash-sim-ymodem)")
	ver := fs.String("version", "1.0.0", "application version a new state starts with")
	counter := fs.Uint64("counter", 1, "release counter a new state starts with")
	linkPath := fs.String("link", "", "stable `PATH` of the virtual port (default $FIELDFLASH_HOME/sim/ttySIM-PROTOCOL)")
	recovery := fs.Bool("recovery", false, "smp: hold the recovery button at power-on, so the device starts in MCUboot serial recovery")
	profile := fs.String("profile", "", "`NAME` of the firmware the device runs as upstream answers: zephyr, zephyr-tuned, mcuboot (smp) or ymodem; default: the simulator's original device")
	part := fs.String("part", "", "`PART` whose flash and UART timing the device has: nrf52840, stm32f4 or none (default none)")
	usbCDC := fs.Bool("usb-cdc", false, "smp: the device sits behind a USB CDC-ACM port: no bytes lost while busy, the port leaves while it resets")
	listProfiles := fs.Bool("list-profiles", false, "list the device profiles and flash parts and exit")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if *listProfiles {
		app.Fprintln(e.stdout, "profiles:")
		for _, p := range app.SimProfiles() {
			app.Fprintf(e.stdout, "  %-13s %-7s %s\n", p.Name, p.Protocol, p.Summary)
		}
		app.Fprintln(e.stdout, "parts:")
		for _, p := range app.SimParts() {
			app.Fprintf(e.stdout, "  %-13s %s\n", p.Name, p.Summary)
		}
		return exitOK
	}
	proto := fs.Arg(0)
	if fs.NArg() == 0 && *profile != "" {
		// The profile names its protocol: `fieldflash sim --profile zephyr`.
		for _, p := range app.SimProfiles() {
			if p.Name == *profile {
				proto = p.Protocol
			}
		}
	}
	if fs.NArg() > 1 || (proto != "smp" && proto != "ymodem") {
		app.Fprintln(e.stderr, "fieldflash sim: say which device, e.g. `fieldflash sim smp`, `fieldflash sim ymodem` or `fieldflash sim --profile zephyr` (--list-profiles lists them)")
		return exitUsage
	}
	fl, err := app.ParseFaults(*faults)
	if err != nil {
		app.Fprintf(e.stderr, "fieldflash sim: --faults: %v\n", err)
		return exitUsage
	}
	if *baud < 0 {
		app.Fprintln(e.stderr, "fieldflash sim: --baud must be 0 (unpaced) or a baud rate such as 115200")
		return exitUsage
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, false, err)
	}
	simDir := filepath.Join(home, "sim")
	if *state == "" {
		*state = filepath.Join(simDir, proto+".flash")
	}
	if *linkPath == "" {
		*linkPath = filepath.Join(simDir, "ttySIM-"+proto)
	}
	abs, err := filepath.Abs(*linkPath)
	if err != nil {
		return reportEnv(e, false, err)
	}
	// A live simulator already serving this path keeps it: removing its symlink would
	// unplug a device someone is flashing.
	if name, ok := app.ServedBy(abs); ok {
		app.Fprintf(e.stderr, "fieldflash sim: %s is already served by a running simulator (%s); stop it or pass --link and --state for a second device\n", abs, name)
		return exitEnv
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := app.StartVirtualDevice(app.VirtualConfig{Protocol: proto, Baud: *baud, Faults: fl, Seed: *seed, State: *state, Hardware: *hardware,
		Version: *ver, Counter: *counter, Symlink: abs, Recovery: *recovery, Profile: *profile, Part: *part, USBCDC: *usbCDC, Log: e.stderr})
	if err != nil {
		return reportEnv(e, false, err)
	}
	defer s.Close()
	withdraw, err := s.Announce(app.AnnounceName(proto))
	if err != nil {
		app.Fprintf(e.stderr, "fieldflash sim: %v (the device runs, but `fieldflash devices` will not list it)\n", err)
	} else {
		defer withdraw()
	}
	mode := ""
	if *recovery {
		mode = ", started in MCUboot serial recovery (button held at power-on)"
	}
	app.Fprintf(e.stdout, "virtual %s device %s running application %s%s\n", proto, s.Hardware(), s.Running(), mode)
	app.Fprintf(e.stdout, "port    %s\n", s.Path())
	app.Fprintf(e.stdout, "pty     %s\n", s.PTYPath())
	app.Fprintf(e.stdout, "state   %s\n", *state)
	if len(fl) > 0 {
		app.Fprintf(e.stdout, "faults  %s (seed %d)\n", app.FormatFaults(fl), *seed)
	}
	app.Fprintf(e.stdout, "line    %s\n", app.BaudText(*baud))
	if *profile != "" || *part != "" {
		port := ""
		if *usbCDC {
			port = ", behind USB CDC-ACM"
		}
		app.Fprintf(e.stdout, "profile %s, flash timing %s%s\n", orDefault(*profile, "original simulator"), orDefault(*part, "none"), port)
	}
	app.Fprintf(e.stdout, "\nflash it with: fieldflash flash BUNDLE.fwb --port %s\nCtrl-C stops the device; its flash stays in the state file.\n", s.Path())
	if f, ok := e.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	st := s.Stats()
	running := s.Running()
	s.Close()
	app.Fprintf(e.stdout, "stopped: %d bytes from the host, %d to it, %d disconnects, %d dropped, %d corrupted; device runs %s\n",
		st.HostToDevice, st.DeviceToHost, st.Disconnects, st.Dropped, st.Corrupted, running)
	return exitOK
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
