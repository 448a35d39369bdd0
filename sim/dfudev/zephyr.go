package dfudev

import (
	"errors"
	"os"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/flash"
)

// Zephyr's defaults (subsys/usb/device/class/dfu/Kconfig, subsys/usb/device/Kconfig).
const (
	zephyrVID           = 0x2fe3 // CONFIG_USB_DEVICE_VID
	zephyrPID           = 0x0100 // CONFIG_USB_DEVICE_PID
	zephyrDFUPID        = 0xffff // CONFIG_USB_DEVICE_DFU_PID ("must be configured by vendor")
	zephyrXfer          = 1024   // CONFIG_USB_REQUEST_BUFFER_SIZE with the DFU class
	zephyrPollTimeout   = 8 * time.Millisecond
	zephyrDetachTimeout = 100 * time.Millisecond // CONFIG_USB_DFU_DETACH_TIMEOUT with WILL_DETACH
	zephyrRebootDelay   = 500 * time.Millisecond // reboot_schedule
	zephyrBootTime      = 300 * time.Millisecond // MCUboot and the application coming up
	// nRF52840 flash (product specification, NVMC): page erase 85 ms per 4 KiB page,
	// 41 µs per 32-bit word written.
	nrfPageErase = 85 * time.Millisecond
	nrfWordWrite = 41 * time.Microsecond
)

// ZephyrLayout is the MCUboot flash of the Zephyr twin: 4 KiB pages, 128 KiB slots.
var ZephyrLayout = flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x10000}

type zephyr struct {
	fl      *flash.Flash
	dfuMode bool
	// flash area the alternate setting selected: flash.Primary for alt 0 ("image_0"),
	// flash.Secondary for alt 1 ("image_1", the download area).
	area      int
	blockNr   uint16
	bytesSent int64
	written   int64
	busy      bool // the work queue is writing
}

func newZephyr(d *Device, path string) (*zephyr, error) {
	fl, err := flash.Open(path, flash.Options{})
	if errors.Is(err, os.ErrNotExist) || (err != nil && !fileExists(path)) {
		fl, err = flash.Create(path, ZephyrLayout, []byte("MCUboot (fieldflash simulator)"), flash.Options{})
		if err == nil && len(d.opt.Initial) > 0 {
			err = fl.Program(flash.Primary, 0, d.opt.Initial)
		}
	}
	if err != nil {
		return nil, err
	}
	z := &zephyr{fl: fl, area: flash.Secondary}
	d.state = dfu.StateAppIdle
	if d.opt.StartInDFU {
		z.dfuMode = true
		d.state = dfu.StateIdle
	} else if res, err := fl.Boot(false); err == nil && res.Mode != flash.ModeApplication {
		// No application to run: MCUboot stays in its serial recovery, which this twin
		// does not serve; come up in DFU mode so the device can be flashed at all.
		z.dfuMode = true
		d.state = dfu.StateIdle
	}
	return z, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Flash is the Zephyr twin's MCUboot flash (nil for other profiles).
func (d *Device) Flash() *flash.Flash {
	if z, ok := d.impl.(*zephyr); ok {
		return z.fl
	}
	return nil
}

func (z *zephyr) close() error { return z.fl.Close() }

func (z *zephyr) attrs(d *Device) dfu.Attributes {
	a := dfu.AttrCanDnload | dfu.AttrWillDetach
	if d.opt.Upload {
		a |= dfu.AttrCanUpload
	}
	if !d.opt.Reboot {
		a |= dfu.AttrManifestationTolerant
	}
	return a
}

func (z *zephyr) descriptors() Descriptors { return Descriptors{} }

func (d *Device) zephyrDescriptors(z *zephyr) Descriptors {
	serial := d.opt.Serial
	if serial == "" {
		serial = "0123456789ABCDEF" // CONFIG_USB_DEVICE_SN
	}
	desc := Descriptors{
		VendorID: zephyrVID, ProductID: zephyrPID, BcdDevice: 0x0100,
		Manufacturer: "ZEPHYR", Product: "USB-DEV", Serial: serial,
		Protocol: dfu.ProtocolRuntime, AltNames: []string{""},
		Functional: dfu.Functional{Attributes: z.attrs(d), DetachTimeout: zephyrDetachTimeout, TransferSize: zephyrXfer, Version: dfu.Version11},
	}
	if z.dfuMode {
		desc.ProductID = zephyrDFUPID
		desc.Protocol = dfu.ProtocolDFUMode
		desc.AltNames = []string{"image_0", "image_1"}
	}
	return desc
}

func (z *zephyr) setAlt(d *Device, alt int) error {
	switch {
	case alt == 0:
		z.area = flash.Primary
	case alt == 1 && z.dfuMode:
		z.area = flash.Secondary
	default:
		return ErrStall
	}
	d.alt = alt
	return nil
}

func (z *zephyr) busReset(d *Device) {
	// With CONFIG_USB_DFU_WILL_DETACH the device detaches by itself; a bus reset changes
	// nothing (dfu_status_cb).
}

func (z *zephyr) appState(d *Device) bool {
	if d.state == dfu.StateAppIdle || d.state == dfu.StateAppDetach {
		d.state = dfu.StateAppIdle
		return true
	}
	return false
}

func (z *zephyr) resetCounters() { z.bytesSent, z.blockNr, z.written = 0, 0, 0 }

func (z *zephyr) setup(d *Device, s Setup, data []byte) ([]byte, func(), error) {
	if s.In() {
		switch s.Request {
		case dfu.ReqGetStatus:
			if d.state == dfu.StateManifestSync {
				if d.opt.Reboot {
					d.state = dfu.StateManifestWaitReset
					return d.statusReply(zephyrPollTimeout), func() { z.reboot(d) }, nil
				}
				d.state = dfu.StateIdle
			}
			return d.statusReply(zephyrPollTimeout), nil, nil
		case dfu.ReqGetState:
			return []byte{byte(d.state)}, nil, nil
		case dfu.ReqUpload:
			return z.upload(d, s)
		}
		return nil, nil, ErrStall
	}
	switch s.Request {
	case dfu.ReqAbort:
		if z.appState(d) {
			return nil, nil, ErrStall
		}
		z.resetCounters()
		d.state, d.status = dfu.StateIdle, dfu.StatusOK
		return nil, nil, nil
	case dfu.ReqClrStatus:
		if z.appState(d) {
			return nil, nil, ErrStall
		}
		d.stats.ClrStatus++
		d.state, d.status = dfu.StateIdle, dfu.StatusOK
		return nil, nil, nil
	case dfu.ReqDnload:
		return z.dnload(d, s, data)
	case dfu.ReqDetach:
		if d.state != dfu.StateAppIdle {
			d.state = dfu.StateAppIdle
			return nil, nil, ErrStall
		}
		d.state = dfu.StateAppDetach
		d.stats.Detaches++
		return nil, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.reenumerate(zephyrDetachTimeout, func() {
				z.dfuMode = true
				z.area = flash.Secondary
				d.state, d.status, d.alt = dfu.StateIdle, dfu.StatusOK, 0
			})
		}, nil
	}
	return nil, nil, ErrStall
}

func (z *zephyr) dnload(d *Device, s Setup, data []byte) ([]byte, func(), error) {
	if z.appState(d) {
		return nil, nil, ErrStall
	}
	first := false
	switch d.state {
	case dfu.StateIdle:
		z.resetCounters()
		if z.area != flash.Secondary {
			// "This area can not be overwritten": answered, the error shows in GETSTATUS.
			d.state, d.status = dfu.StateError, dfu.StatusErrWrite
			return nil, nil, nil
		}
		first = true
	case dfu.StateDnloadIdle:
	default:
		d.state, d.status = dfu.StateError, dfu.StatusErrUnknown
		z.resetCounters()
		return nil, nil, ErrStall
	}
	d.state = dfu.StateDnBusy
	z.busy = true
	block := append([]byte(nil), data...)
	if len(block) > 0 {
		d.stats.DataBlocks++
		d.stats.DataBytes += int64(len(block))
	}
	// The work queue writes the block while GETSTATUS answers dfuDNBUSY.
	go z.work(d, first, block)
	return nil, nil, nil
}

func (z *zephyr) work(d *Device, first bool, block []byte) {
	if first {
		// boot_erase_img_bank: the whole download slot, page by page.
		d.sleep(nrfPageErase * time.Duration(ZephyrLayout.SlotSize/ZephyrLayout.SectorSize))
		d.mu.Lock()
		d.stats.Erases++
		err := z.fl.EraseSlot(flash.Secondary)
		d.mu.Unlock()
		if err != nil {
			d.mu.Lock()
			d.state, d.status, z.busy = dfu.StateError, dfu.StatusErrErase, false
			d.mu.Unlock()
			return
		}
	}
	d.sleep(nrfWordWrite * time.Duration((len(block)+3)/4))
	d.mu.Lock()
	defer d.mu.Unlock()
	z.busy = false
	if len(block) == 0 {
		// Download completed: request the MCUboot upgrade.
		d.state = dfu.StateManifestSync
		z.resetCounters()
		if err := z.fl.RequestSwap(d.opt.Permanent); err != nil {
			d.state, d.status = dfu.StateError, dfu.StatusErrWrite
		}
		return
	}
	if z.written+int64(len(block)) > ZephyrLayout.SlotSize {
		d.state, d.status = dfu.StateError, dfu.StatusErrWrite
		return
	}
	if err := z.fl.Program(flash.Secondary, z.written, block); err != nil {
		d.state, d.status = dfu.StateError, dfu.StatusErrWrite
		return
	}
	z.written += int64(len(block))
	d.state = dfu.StateDnloadIdle
}

func (z *zephyr) upload(d *Device, s Setup) ([]byte, func(), error) {
	if !d.opt.Upload {
		return nil, nil, d.stall(dfu.StatusErrStalledPkt)
	}
	if z.appState(d) {
		return nil, nil, ErrStall
	}
	switch d.state {
	case dfu.StateIdle:
		z.resetCounters()
		fallthrough
	case dfu.StateUploadIdle:
		if s.Length == 0 || z.blockNr != s.Value {
			d.state, d.status = dfu.StateError, dfu.StatusErrUnknown
			return nil, nil, ErrStall
		}
		size := ZephyrLayout.SlotSize
		left := size - z.bytesSent
		n := min(int64(s.Length), left, zephyrXfer)
		buf := make([]byte, n)
		if n > 0 {
			if _, err := z.fl.Slot(z.area).ReadAt(buf, z.bytesSent); err != nil {
				d.state, d.status = dfu.StateError, dfu.StatusErrFile
				return nil, nil, ErrStall
			}
		}
		z.bytesSent += n
		z.blockNr++
		d.stats.Uploads++
		if z.bytesSent == size && n < int64(s.Length) {
			d.state = dfu.StateIdle
			return nil, nil, nil // Zephyr ends the upload with a zero-length answer
		}
		d.state = dfu.StateUploadIdle
		return buf, nil, nil
	}
	d.state, d.status = dfu.StateError, dfu.StatusErrUnknown
	z.resetCounters()
	return nil, nil, ErrStall
}

// reboot is CONFIG_USB_DFU_REBOOT's warm reboot: the device leaves the bus, MCUboot swaps
// the new image in, and the application comes back in run-time mode.
func (z *zephyr) reboot(d *Device) {
	time.AfterFunc(0, func() {
		d.sleep(zephyrRebootDelay)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.reenumerate(zephyrBootTime, func() {
			res, err := z.fl.Boot(false)
			z.dfuMode = err != nil || res.Mode != flash.ModeApplication
			z.area = flash.Secondary
			d.alt = 0
			d.state, d.status = dfu.StateAppIdle, dfu.StatusOK
			if z.dfuMode {
				d.state = dfu.StateIdle
			}
		})
	})
}

// RuntimeDescriptors are what the device enumerates with in its application's run-time
// mode, whatever mode it is in now; false for a device without one (the STM32's ROM
// bootloader). A Zephyr twin started in DFU mode comes up in run-time mode after the
// reboot that follows a download.
func (d *Device) RuntimeDescriptors() (Descriptors, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.impl.(*zephyr); ok {
		z := *p
		z.dfuMode = false
		return d.zephyrDescriptors(&z), true
	}
	return Descriptors{}, false
}

// DFUModeDescriptors are what the device enumerates with in DFU mode, whatever mode it
// is in now (a gadget transport sets both up at the start).
func (d *Device) DFUModeDescriptors() Descriptors {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch p := d.impl.(type) {
	case *zephyr:
		z := *p
		z.dfuMode = true
		return d.zephyrDescriptors(&z)
	case *stm32:
		return d.stm32Descriptors(p)
	}
	return Descriptors{}
}
