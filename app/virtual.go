package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/sim/ymodemdev"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Hardware ids of the virtual devices: the demo bundle (assets/internal/demogen) has one
// target for each.
const (
	SimHardwareSMP    = "fieldflash-sim-smp"
	SimHardwareYMODEM = "fieldflash-sim-ymodem"
)

// Fault is one misbehaviour of a virtual cable (docs/simulator.md).
type Fault = link.Fault

// LinkStats counts what a virtual cable carried and what it did to it.
type LinkStats = link.Stats

// ParseFaults reads a fault spec such as "disconnect@20k:2s,drop@30000:16".
func ParseFaults(spec string) ([]Fault, error) { return link.ParseFaults(spec) }

// FormatFaults writes faults back in the spec grammar.
func FormatFaults(f []Fault) string { return link.FormatFaults(f) }

// VirtualConfig is one virtual device: what `fieldflash sim` and the demo start.
type VirtualConfig struct {
	Protocol string // "smp" or "ymodem"
	Baud     int    // pace of the virtual cable; 0 as fast as the pty goes
	Faults   []Fault
	Seed     uint64
	State    string // flash file (smp) or directory (ymodem)
	Hardware string // default SimHardwareSMP or SimHardwareYMODEM
	Version  string // application a new state starts with (default 1.0.0)
	Counter  uint64
	Symlink  string // stable path the host opens
	Recovery bool   // smp: hold the recovery button
	// Profile is the firmware an smp device runs, as upstream answers (SimProfiles):
	// "zephyr", "zephyr-tuned" or "mcuboot"; empty keeps the simulator's original device.
	Profile string
	// Part is the flash and UART timing (SimParts): "nrf52840", "stm32f4"; empty or
	// "none" takes no time.
	Part string
	// USBCDC puts the device behind a USB CDC-ACM port instead of a UART: no bytes are
	// lost while it is busy (USB flow control), and the port leaves the bus while the
	// device resets, coming back when it has booted.
	USBCDC bool
	Log    io.Writer
}

// SimProfile names one virtual device profile and what it follows.
type SimProfile struct{ Name, Protocol, Summary string }

// SimProfiles lists the device profiles `fieldflash sim --profile` takes.
func SimProfiles() []SimProfile {
	var out []SimProfile
	for _, p := range smpdev.Profiles() {
		out = append(out, SimProfile{p.Name, "smp", p.Summary})
	}
	return append(out, SimProfile{"ymodem", "ymodem", "a classic serial bootloader taking images by YMODEM (lrzsz's rb is its reference peer)"})
}

// SimParts lists the flash parts whose timing the simulator models.
func SimParts() []SimProfile {
	var out []SimProfile
	for _, p := range flash.Parts() {
		out = append(out, SimProfile{Name: p.Name, Summary: p.Summary})
	}
	return out
}

// VirtualDevice is a running virtual device behind a simulated serial cable.
type VirtualDevice struct {
	cfg  VirtualConfig
	link *link.Link
	smp  *smpdev.Device
	ym   *ymodemdev.Device
	fl   *flash.Flash

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Path is what a host opens.
func (s *VirtualDevice) Path() string { return s.link.HostPath() }

// PTYPath is the pseudo-terminal behind Path.
func (s *VirtualDevice) PTYPath() string { return s.link.PTYPath() }

// Hardware is the hardware id the device reports.
func (s *VirtualDevice) Hardware() string { return s.cfg.Hardware }

// Protocol is what the device speaks.
func (s *VirtualDevice) Protocol() string { return s.cfg.Protocol }

// Stats counts what the cable carried.
func (s *VirtualDevice) Stats() LinkStats { return s.link.Stats() }

// Running says which application version the device runs now.
func (s *VirtualDevice) Running() string {
	if s.smp != nil {
		return s.fl.Image(flash.Primary).VersionString()
	}
	a, _, err := s.ym.Booted()
	if err != nil {
		return "none"
	}
	return a.Version
}

// PullCable unplugs the virtual cable, as a technician tripping over it would, and plugs
// it back in after d (0: leave it out until PlugCable).
func (s *VirtualDevice) PullCable(d time.Duration) {
	s.link.Disconnect()
	if d > 0 {
		time.AfterFunc(d, func() { s.link.Reconnect() })
	}
}

// PlugCable plugs a pulled cable back in.
func (s *VirtualDevice) PlugCable() error { return s.link.Reconnect() }

// Connected says whether the cable is plugged in.
func (s *VirtualDevice) Connected() bool { return s.link.Connected() }

// Announce makes the device visible to ListDevices in every fieldflash process of this
// $FIELDFLASH_HOME; withdraw takes it back.
func (s *VirtualDevice) Announce(name string) (withdraw func() error, err error) {
	return transports.Announce(transports.Announcement{Path: s.Path(), Protocol: s.cfg.Protocol, Name: name, HardwareID: s.cfg.Hardware})
}

// AnnounceName is the name a virtual device of this process announces itself under.
func AnnounceName(protocol string) string {
	return "sim-" + protocol + "-" + strconv.Itoa(os.Getpid())
}

// ServedBy returns the name of the running virtual device that serves path, if one does:
// a second simulator must not take over a path someone may be flashing through.
func ServedBy(path string) (string, bool) {
	ports, err := transports.List()
	if err != nil {
		return "", false
	}
	for _, p := range ports {
		if p.Virtual && p.Path == path {
			return p.Name, true
		}
	}
	return "", false
}

// Close unplugs the cable and stops the device; its state stays on disk.
func (s *VirtualDevice) Close() {
	s.once.Do(func() {
		s.cancel()
		s.link.Close()
		<-s.done
		if s.fl != nil {
			s.fl.Close()
		}
	})
}

// StartVirtualDevice starts a virtual device on a pseudo-terminal: a Zephyr application
// with MCUmgr over its console and MCUboot below it (smp), or a classic serial
// bootloader taking images by YMODEM (ymodem). Its flash lives in cfg.State, so a
// restarted device keeps what was flashed.
func StartVirtualDevice(cfg VirtualConfig) (*VirtualDevice, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Version == "" {
		cfg.Version = "1.0.0"
	}
	s := &VirtualDevice{cfg: cfg, done: make(chan struct{})}
	var serve func(ctx context.Context, rw io.ReadWriter) error
	var onReset func()
	switch cfg.Protocol {
	case "smp":
		if cfg.Hardware == "" {
			cfg.Hardware = SimHardwareSMP
		}
		// The profile and part are looked up before the flash is opened: a wrong name
		// leaves nothing to close.
		var prof *smpdev.Profile
		if cfg.Profile != "" {
			p, err := smpdev.LookupProfile(cfg.Profile)
			if err != nil {
				return nil, err
			}
			prof = p
		}
		part := flash.PartNone
		if cfg.Part != "" {
			p, err := flash.LookupPart(cfg.Part)
			if err != nil {
				return nil, err
			}
			part = p
		}
		fl, err := openSimFlash(cfg)
		if err != nil {
			return nil, err
		}
		if cfg.USBCDC {
			part.DropsWhileBusy = false
		}
		opt := smpdev.Options{HardwareID: cfg.Hardware, Recovery: cfg.Recovery, Profile: prof, Part: part, Baud: simUARTBaud(cfg.Baud),
			OnReset: func(b flash.BootResult) {
				fmt.Fprintf(cfg.Log, "sim: device rebooted into %s (%s)\n", b.Mode, bootNote(b))
				if cfg.USBCDC {
					s.link.Reconnect()
				}
			}}
		if cfg.USBCDC {
			// The CDC-ACM port is the device's own USB function: it leaves the bus
			// with the reset and enumerates again once the device has booted.
			opt.OnResetStart = func() { s.link.Disconnect() }
		}
		dev, err := smpdev.New(fl, opt)
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
		if cfg.Profile != "" && cfg.Profile != "ymodem" || cfg.Part != "" && cfg.Part != "none" {
			return nil, fmt.Errorf("virtual YMODEM device: profile %q and part %q: the YMODEM bootloader has the profile ymodem and no flash timing", cfg.Profile, cfg.Part)
		}
		if cfg.Hardware == "" {
			cfg.Hardware = SimHardwareYMODEM
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

func (s *VirtualDevice) closeState() {
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
func openSimFlash(cfg VirtualConfig) (*flash.Flash, error) {
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
func openSimYMODEM(cfg VirtualConfig) (*ymodemdev.Device, error) {
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

// BaudText is a virtual cable's pace in words.
func BaudText(b int) string {
	if b == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%d baud, 8N1 (%d bytes/s each way)", b, b/10)
}

// simUARTBaud is the rate the device's UART receives at: the cable's, or, on an unpaced
// cable, one so fast that its bytes take no time.
func simUARTBaud(baud int) int {
	if baud <= 0 {
		return 100_000_000
	}
	return baud
}
