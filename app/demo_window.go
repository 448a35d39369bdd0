package app

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DemoOptions shape the desktop demo's virtual devices.
type DemoOptions struct {
	// SMPBaud and YMODEMBaud pace the two virtual cables (0: 115200).
	SMPBaud, YMODEMBaud int
}

// Demo is the desktop app's demo: the built-in demo bundle on disk, a demo-mode session,
// and two virtual devices on 1.0.0 (a Zephyr/MCUboot device speaking SMP and a classic
// YMODEM bootloader) announced so that the device list shows them. Nothing is flashed
// until the person presses Update; PullCable is the demo's "pull the cable" button.
type Demo struct {
	Bundle  string
	Session *Session
	Devices []*VirtualDevice

	mu       sync.Mutex
	withdraw []func() error
}

// StartDemo starts the desktop demo afresh: demo state apart from real state
// ($FIELDFLASH_HOME/demo), new devices and no journals from an earlier demo.
func StartDemo(opt DemoOptions) (*Demo, error) {
	if opt.SMPBaud == 0 {
		opt.SMPBaud = 115200
	}
	if opt.YMODEMBaud == 0 {
		opt.YMODEMBaud = 115200
	}
	home, err := Home()
	if err != nil {
		return nil, err
	}
	s, err := OpenSession(true)
	if err != nil {
		return nil, err
	}
	path, err := DemoBundlePath(home)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(home, "demo")
	devDir := filepath.Join(dir, "devices")
	for _, d := range []string{devDir, s.JournalDir()} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("demo: clearing %s: %v", d, err)
		}
	}
	d := &Demo{Bundle: path, Session: s}
	for _, cfg := range []VirtualConfig{
		{Protocol: "smp", Baud: opt.SMPBaud, State: filepath.Join(devDir, "smp.flash"), Version: "1.0.0", Counter: 1,
			Symlink: filepath.Join(dir, "ttySIM-smp")},
		{Protocol: "ymodem", Baud: opt.YMODEMBaud, State: filepath.Join(devDir, "ymodem"), Version: "1.0.0", Counter: 1,
			Symlink: filepath.Join(dir, "ttySIM-ymodem")},
	} {
		dev, err := StartVirtualDevice(cfg)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.Devices = append(d.Devices, dev)
		w, err := dev.Announce(AnnounceName(cfg.Protocol))
		if err != nil {
			d.Close()
			return nil, err
		}
		d.withdraw = append(d.withdraw, w)
	}
	return d, nil
}

// Device returns the demo's virtual device on port, or nil.
func (d *Demo) Device(port string) *VirtualDevice {
	want := resolvePath(port)
	for _, v := range d.Devices {
		if v.Path() == port || resolvePath(v.Path()) == want {
			return v
		}
	}
	return nil
}

// PullCable pulls the virtual cable of the device on port and plugs it back in after
// out, as the demo's button does. It says whether port is one of the demo's devices.
func (d *Demo) PullCable(port string, out time.Duration) bool {
	v := d.Device(port)
	if v == nil {
		return false
	}
	v.PullCable(out)
	return true
}

// Close withdraws and stops the demo's devices.
func (d *Demo) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.withdraw {
		w()
	}
	d.withdraw = nil
	for _, v := range d.Devices {
		v.Close()
	}
}
