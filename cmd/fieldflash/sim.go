package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/sim/ymodemdev"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

func init() {
	register(&command{name: "sim", summary: "run a virtual SMP or YMODEM device on a pseudo-terminal", run: cmdSim})
}

// Hardware ids of the virtual devices: the demo bundle (assets/internal/demogen) has one
// target for each.
const (
	simHardwareSMP    = "fieldflash-sim-smp"
	simHardwareYMODEM = "fieldflash-sim-ymodem"
)

const simHelp = `
Starts a virtual device behind a simulated serial cable (a pseudo-terminal) and prints the
path to open, e.g. with "fieldflash flash BUNDLE --port PATH". It runs until Ctrl-C.

  smp     a Zephyr application with MCUmgr over the console and MCUboot below it
          (two slots, trial boot, confirm, revert; --recovery holds the recovery button)
  ymodem  a classic serial bootloader that takes an image by YMODEM

The device's flash lives in --state (default $FIELDFLASH_HOME/sim/smp.flash or
$FIELDFLASH_HOME/sim/ymodem.flash/), so a restarted simulator keeps what was flashed; a new
state starts with application --version and release counter --counter. --faults makes the
cable misbehave (grammar in docs/simulator.md), e.g. "disconnect@20k:2s,drop@30000:16".
The device is announced under $FIELDFLASH_HOME/sim/ so "fieldflash devices" lists it.

Exit codes: 0 stopped by Ctrl-C, 2 usage, 3 the state or the pseudo-terminal failed.`

// simConfig is one virtual device: what the sim command and the demo start.
type simConfig struct {
	Protocol string // "smp" or "ymodem"
	Baud     int
	Faults   []link.Fault
	Seed     uint64
	State    string // flash file (smp) or directory (ymodem)
	Hardware string
	Version  string // application a new state starts with
	Counter  uint64
	Symlink  string // stable path the host opens
	Recovery bool   // smp: hold the recovery button
	Log      io.Writer
}

// simDevice is a running virtual device.
type simDevice struct {
	cfg  simConfig
	link *link.Link
	smp  *smpdev.Device
	ym   *ymodemdev.Device
	fl   *flash.Flash

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Path is what a host opens.
func (s *simDevice) Path() string { return s.link.HostPath() }

// Running says which application version the device runs now.
func (s *simDevice) Running() string {
	if s.smp != nil {
		return s.fl.Image(flash.Primary).VersionString()
	}
	a, _, err := s.ym.Booted()
	if err != nil {
		return "none"
	}
	return a.Version
}

// Close unplugs the cable and stops the device; its state stays on disk.
func (s *simDevice) Close() {
	s.once.Do(func() {
		s.cancel()
		s.link.Close()
		<-s.done
		if s.fl != nil {
			s.fl.Close()
		}
	})
}

func startSim(cfg simConfig) (*simDevice, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Version == "" {
		cfg.Version = "1.0.0"
	}
	s := &simDevice{cfg: cfg, done: make(chan struct{})}
	var serve func(ctx context.Context, rw io.ReadWriter) error
	var onReset func()
	switch cfg.Protocol {
	case "smp":
		if cfg.Hardware == "" {
			cfg.Hardware = simHardwareSMP
		}
		fl, err := openSimFlash(cfg)
		if err != nil {
			return nil, err
		}
		dev, err := smpdev.New(fl, smpdev.Options{HardwareID: cfg.Hardware, Recovery: cfg.Recovery,
			OnReset: func(b flash.BootResult) {
				fmt.Fprintf(cfg.Log, "sim: device rebooted into %s (%s)\n", b.Mode, bootNote(b))
			}})
		if err != nil {
			fl.Close()
			return nil, fmt.Errorf("virtual device %s: %v", cfg.State, err)
		}
		// The technician holds the button while the device powers on, then lets go: the
		// next reset (after a recovery upload) boots whatever the primary slot holds.
		dev.SetRecovery(false)
		s.fl, s.smp = fl, dev
		serve = func(ctx context.Context, rw io.ReadWriter) error { return smpdev.Serve(ctx, rw, dev) }
		onReset = func() { dev.Reboot() }
	case "ymodem":
		if cfg.Hardware == "" {
			cfg.Hardware = simHardwareYMODEM
		}
		dev, err := openSimYMODEM(cfg)
		if err != nil {
			return nil, err
		}
		s.ym = dev
		serve = dev.Serve
	default:
		return nil, fmt.Errorf("protocol %q: the simulator has smp and ymodem", cfg.Protocol)
	}
	s.cfg = cfg
	if cfg.Symlink != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Symlink), 0o700); err != nil {
			s.closeState()
			return nil, fmt.Errorf("virtual port %s: %v", cfg.Symlink, err)
		}
		// A simulator that was killed leaves its symlink behind; it points at a dead pty.
		if fi, err := os.Lstat(cfg.Symlink); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			os.Remove(cfg.Symlink)
		}
	}
	l, err := link.Open(link.Config{Baud: cfg.Baud, Faults: cfg.Faults, Seed: cfg.Seed, Symlink: cfg.Symlink, OnReset: onReset})
	if err != nil {
		s.closeState()
		return nil, fmt.Errorf("virtual cable: %v", err)
	}
	s.link = l
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		for {
			dev, err := l.Accept(ctx)
			if err != nil {
				return
			}
			serve(ctx, dev)
			dev.Close()
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintln(cfg.Log, "sim: cable pulled; waiting for it to be plugged back in")
		}
	}()
	return s, nil
}

func (s *simDevice) closeState() {
	if s.fl != nil {
		s.fl.Close()
	}
}

func bootNote(b flash.BootResult) string {
	s := "swap " + b.Swap.String()
	if b.Refused != "" {
		s += ", refused: " + b.Refused
	}
	return s
}

// simFirmware is an application image that never changes for a given name.
func simFirmware(name string, n int) []byte {
	out := make([]byte, 0, n+32)
	block := sha256.Sum256([]byte(name))
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}

// openSimFlash opens the SMP device's flash, or makes a new one holding a factory image
// (an MCUboot image of cfg.Version with security counter cfg.Counter) in the primary slot.
func openSimFlash(cfg simConfig) (*flash.Flash, error) {
	if _, err := os.Stat(cfg.State); err == nil {
		fl, err := flash.Open(cfg.State, flash.Options{})
		if err != nil {
			return nil, fmt.Errorf("virtual device flash %s: %v; delete it to start afresh", cfg.State, err)
		}
		return fl, nil
	}
	v, err := mcuboot.ParseVersion(cfg.Version)
	if err != nil {
		return nil, fmt.Errorf("--version %q: %v; write e.g. 1.0.0", cfg.Version, err)
	}
	counter := uint32(cfg.Counter)
	img, err := mcuboot.Build(simFirmware("fieldflash-sim-smp-app-"+cfg.Version, 40*1024), mcuboot.BuildOptions{Version: v, SecurityCounter: &counter})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.State), 0o700); err != nil {
		return nil, fmt.Errorf("virtual device flash %s: %v", cfg.State, err)
	}
	fl, err := flash.Create(cfg.State, flash.DefaultLayout, []byte("MCUboot (fieldflash sim)"), flash.Options{})
	if err != nil {
		return nil, fmt.Errorf("virtual device flash %s: %v", cfg.State, err)
	}
	if err := fl.Program(flash.Primary, 0, img); err != nil {
		fl.Close()
		os.Remove(cfg.State)
		return nil, fmt.Errorf("virtual device flash %s: %v", cfg.State, err)
	}
	return fl, nil
}

// openSimYMODEM opens the classic bootloader's flash directory, installing a factory
// application on a new one. Images are checked as MCUboot images when they are; a raw
// image the demo bundle carries gets that release's version and counter (a real
// application would carry them in its own bytes); any other raw image is taken with an
// unknown version at the device's counter.
func openSimYMODEM(cfg simConfig) (*ymodemdev.Device, error) {
	var dev *ymodemdev.Device
	inspect := func(image io.ReaderAt, size int64) (ymodemdev.Info, error) {
		if info, err := ymodemdev.MCUbootInspect(image, size); err == nil {
			return info, nil
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(image, 0, size)); err != nil {
			return ymodemdev.Info{}, err
		}
		if info, ok := knownDemoImages()[hex.EncodeToString(h.Sum(nil))]; ok {
			return info, nil
		}
		cur, _, _ := dev.Booted()
		return ymodemdev.Info{Counter: cur.Counter}, nil
	}
	var err error
	dev, err = ymodemdev.Open(ymodemdev.Config{Dir: cfg.State, HardwareID: cfg.Hardware, Inspect: inspect})
	if err != nil {
		return nil, fmt.Errorf("virtual device %s: %v", cfg.State, err)
	}
	if _, _, err := dev.Booted(); err != nil {
		if err := dev.Install(simFirmware("fieldflash-sim-ymodem-app-"+cfg.Version, 40*1024), ymodemdev.Info{Version: cfg.Version, Counter: cfg.Counter}); err != nil {
			return nil, fmt.Errorf("virtual device %s: installing the factory image: %v", cfg.State, err)
		}
	}
	return dev, nil
}

var (
	demoImagesOnce sync.Once
	demoImages     map[string]ymodemdev.Info
)

// knownDemoImages maps the SHA-256 of each demo bundle payload to its release, read from
// the demo bundle verified against the demo root.
func knownDemoImages() map[string]ymodemdev.Info {
	demoImagesOnce.Do(func() {
		demoImages = map[string]ymodemdev.Info{}
		v, err := verifyEmbeddedDemo()
		if err != nil {
			return
		}
		for _, t := range v.Targets {
			demoImages[t.SHA256] = ymodemdev.Info{Version: t.Meta.Version, Counter: t.Meta.ReleaseCounter}
		}
	})
	return demoImages
}

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
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "smp" && fs.Arg(0) != "ymodem") {
		fmt.Fprintln(e.stderr, "fieldflash sim: say which device, e.g. `fieldflash sim smp` or `fieldflash sim ymodem`")
		return exitUsage
	}
	proto := fs.Arg(0)
	fl, err := link.ParseFaults(*faults)
	if err != nil {
		fmt.Fprintf(e.stderr, "fieldflash sim: --faults: %v\n", err)
		return exitUsage
	}
	if *baud < 0 {
		fmt.Fprintln(e.stderr, "fieldflash sim: --baud must be 0 (unpaced) or a baud rate such as 115200")
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
	if ports, err := transports.List(); err == nil {
		for _, p := range ports {
			if p.Virtual && p.Path == abs {
				fmt.Fprintf(e.stderr, "fieldflash sim: %s is already served by a running simulator (%s); stop it or pass --link and --state for a second device\n", abs, p.Name)
				return exitEnv
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := startSim(simConfig{Protocol: proto, Baud: *baud, Faults: fl, Seed: *seed, State: *state, Hardware: *hardware,
		Version: *ver, Counter: *counter, Symlink: abs, Recovery: *recovery, Log: e.stderr})
	if err != nil {
		return reportEnv(e, false, err)
	}
	defer s.Close()
	withdraw, err := transports.Announce(transports.Announcement{Path: s.Path(), Protocol: proto, Name: "sim-" + proto + "-" + strconv.Itoa(os.Getpid()), HardwareID: s.cfg.Hardware})
	if err != nil {
		fmt.Fprintf(e.stderr, "fieldflash sim: %v (the device runs, but `fieldflash devices` will not list it)\n", err)
	} else {
		defer withdraw()
	}
	mode := ""
	if *recovery {
		mode = ", started in MCUboot serial recovery (button held at power-on)"
	}
	fmt.Fprintf(e.stdout, "virtual %s device %s running application %s%s\n", proto, s.cfg.Hardware, s.Running(), mode)
	fmt.Fprintf(e.stdout, "port    %s\n", s.Path())
	fmt.Fprintf(e.stdout, "pty     %s\n", s.link.PTYPath())
	fmt.Fprintf(e.stdout, "state   %s\n", *state)
	if len(fl) > 0 {
		fmt.Fprintf(e.stdout, "faults  %s (seed %d)\n", link.FormatFaults(fl), *seed)
	}
	fmt.Fprintf(e.stdout, "line    %s\n", baudText(*baud))
	fmt.Fprintf(e.stdout, "\nflash it with: fieldflash flash BUNDLE.fwb --port %s\nCtrl-C stops the device; its flash stays in the state file.\n", s.Path())
	if f, ok := e.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	st := s.link.Stats()
	running := s.Running()
	s.Close()
	fmt.Fprintf(e.stdout, "stopped: %d bytes from the host, %d to it, %d disconnects, %d dropped, %d corrupted; device runs %s\n",
		st.HostToDevice, st.DeviceToHost, st.Disconnects, st.Dropped, st.Corrupted, running)
	return exitOK
}

func baudText(b int) string {
	if b == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%d baud, 8N1 (%d bytes/s each way)", b, b/10)
}
