package app

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/dfudev"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Virtual DFU profiles (sim/dfudev).
const (
	// VirtualSTM32 is an STM32F407 in its ROM DfuSe bootloader (AN3156): 0483:df11.
	VirtualSTM32 = dfudev.ProfileSTM32
	// VirtualZephyr is a Zephyr application with the USB DFU class under MCUboot:
	// run-time mode 2fe3:0100, DFU mode 2fe3:ffff.
	VirtualZephyr = dfudev.ProfileZephyr
)

// VirtualUSBConfig is one virtual DFU device.
type VirtualUSBConfig struct {
	Profile string // VirtualSTM32 or VirtualZephyr
	Serial  string // "" takes the profile's own
	// Running is the version of the MCUboot image a Zephyr device's application runs; ""
	// leaves it without a bootable image, so it comes up in DFU mode (a device whose
	// application does not boot).
	Running string
	// Upload and Reboot are Zephyr's CONFIG_USB_DFU_ENABLE_UPLOAD and CONFIG_USB_DFU_REBOOT.
	Upload, Reboot bool
	// TimeScale multiplies the profile's upstream flash timing; 0 runs without delays.
	TimeScale float64
	// Dir holds the device's flash; "" a temporary directory removed by Close.
	Dir string
}

// VirtualUSB is a simulated USB bus with DFU device twins on it (sim/dfudev). While it
// runs it takes the place of this machine's USB in this process (SetUSBBus): ListUSB,
// WatchUSB, CheckFitUSB, Flash with FlashRequest.USB and ProbeRecoveryUSB reach its
// devices through the same code as real ones. Below the USB boundary it is a model; the
// lab (sim/usblab) runs the same twins behind the kernel's real USB stack.
type VirtualUSB struct {
	hub     *dfudev.Hub
	restore func()

	mu      sync.Mutex
	devices []*VirtualDFU
	once    sync.Once
}

// StartVirtualUSB puts an empty virtual bus in place of this machine's USB; Close puts
// the real one back.
func StartVirtualUSB() *VirtualUSB {
	hub := dfudev.NewHub()
	return &VirtualUSB{hub: hub, restore: SetUSBBus(hub)}
}

// VirtualDFU is one virtual DFU device on a VirtualUSB.
type VirtualDFU struct {
	cfg  VirtualUSBConfig
	dev  *dfudev.Device
	host *dfudev.Host
	dir  string
	temp bool
}

// Add plugs a new virtual device into the bus.
func (u *VirtualUSB) Add(cfg VirtualUSBConfig) (*VirtualDFU, error) {
	d := &VirtualDFU{cfg: cfg, dir: cfg.Dir}
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "fieldflash-usb-")
		if err != nil {
			return nil, err
		}
		d.dir, d.temp = dir, true
	}
	opt := dfudev.Options{Profile: cfg.Profile, Serial: cfg.Serial, TimeScale: cfg.TimeScale, Upload: cfg.Upload, Reboot: cfg.Reboot}
	if cfg.Profile == VirtualZephyr && cfg.Running != "" {
		v, err := mcuboot.ParseVersion(cfg.Running)
		if err != nil {
			return nil, err
		}
		img, err := mcuboot.Build(make([]byte, 4096), mcuboot.BuildOptions{Version: v})
		if err != nil {
			return nil, err
		}
		opt.Initial = img
	}
	dev, err := dfudev.New(filepath.Join(d.dir, fmt.Sprintf("usb-%s.flash", cfg.Profile)), opt)
	if err != nil {
		d.remove()
		return nil, err
	}
	d.dev = dev
	d.host = u.hub.Plug(dev)
	u.mu.Lock()
	u.devices = append(u.devices, d)
	u.mu.Unlock()
	return d, nil
}

// Close unplugs every device and puts this machine's USB back.
func (u *VirtualUSB) Close() {
	u.once.Do(func() {
		u.restore()
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, d := range u.devices {
			d.host.Unplug()
			d.dev.Close()
			d.remove()
		}
	})
}

func (d *VirtualDFU) remove() {
	if d.temp {
		os.RemoveAll(d.dir)
	}
}

// Info is what the device enumerates with now.
func (d *VirtualDFU) Info() USBDevice {
	desc := d.dev.Descriptors()
	return USBDevice{Info: &dfu.DeviceInfo{VendorID: desc.VendorID, ProductID: desc.ProductID, Serial: desc.Serial, Product: desc.Product}}
}

// Spec picks the device as it enumerates now: "0483:df11,325A36713137".
func (d *VirtualDFU) Spec() string {
	desc := d.dev.Descriptors()
	return fmt.Sprintf("%04x:%04x,%s", desc.VendorID, desc.ProductID, desc.Serial)
}

// Running is the version a Zephyr device's MCUboot boots (its primary slot), "" without
// a bootable image; for an STM32, "application" once it left its bootloader, else "".
func (d *VirtualDFU) Running() string {
	if fl := d.dev.Flash(); fl != nil {
		if img := fl.Image(flash.Primary); img.Valid {
			return img.VersionString()
		}
		return ""
	}
	if d.dev.Left() {
		return "application"
	}
	return ""
}

// Memory reads an STM32 device's memory.
func (d *VirtualDFU) Memory(addr uint32, n int) ([]byte, error) { return d.dev.Memory(addr, n) }

// Present says whether the device is on the bus.
func (d *VirtualDFU) Present() bool { return d.host.Present() }

// PullCable takes the device off the bus until PlugCable; with after > 0, once that many
// more bytes of download data reached it.
func (d *VirtualDFU) PullCable(after int64) {
	if after > 0 {
		d.host.UnplugAfter(after)
		return
	}
	d.host.Unplug()
}

// PlugCable puts the cable back.
func (d *VirtualDFU) PlugCable() { d.host.Replug() }

// EnterBootloader power-cycles an STM32 with BOOT0 held: it comes back in its DFU
// bootloader.
func (d *VirtualDFU) EnterBootloader() { d.dev.EnterBootloader() }

// WaitGone waits up to t for the device to leave the bus.
func (d *VirtualDFU) WaitGone(t time.Duration) bool {
	end := time.Now().Add(t)
	for d.host.Present() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
