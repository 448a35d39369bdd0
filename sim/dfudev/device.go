// Package dfudev is a virtual USB DFU device: the device side of DFU 1.1 and DfuSe as two
// upstream firmwares answer, in their default configuration, timing included:
//
//   - ProfileZephyr: Zephyr's USB DFU class (subsys/usb/device/class/dfu/usb_dfu.c) in an
//     application under MCUboot. It starts in run-time mode (one DFU interface, protocol
//     1); DFU_DETACH makes it leave the bus and come back in DFU mode after
//     CONFIG_USB_DFU_DETACH_TIMEOUT (100 ms, CONFIG_USB_DFU_WILL_DETACH=y), with alternate
//     settings "image_0" (the running slot, never written) and "image_1" (the slot a
//     download goes to). The first block erases the whole slot; blocks of
//     CONFIG_USB_REQUEST_BUFFER_SIZE (1024) bytes are written by a work queue while
//     GETSTATUS answers dfuDNBUSY with bwPollTimeout CONFIG_USB_DFU_DEFAULT_POLLTIMEOUT
//     (8 ms); the zero-length download requests the MCUboot upgrade. Upload
//     (CONFIG_USB_DFU_ENABLE_UPLOAD), reboot after download (CONFIG_USB_DFU_REBOOT) and a
//     permanent upgrade (CONFIG_USB_DFU_PERMANENT_DOWNLOAD) are options, off by default as
//     in Kconfig. Its flash is sim/flash, the MCUboot model the SMP twin uses.
//   - ProfileSTM32: ST's STM32Cube USB device library DFU class (usbd_dfu.c) with the
//     DFU_Standalone application's flash media (usbd_dfu_flash.c) on an STM32F407: DfuSe
//     (bcdDFU 0x011a, VID 0483 PID df11), wTransferSize USBD_DFU_XFER_SIZE 1024,
//     bmAttributes 0x0b (download, upload, will detach; not manifestation tolerant),
//     "@Internal Flash  /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg" (the first three
//     sectors hold the DFU application and are read-only), bwPollTimeout
//     FLASH_ERASE_TIME and FLASH_PROGRAM_TIME 50 ms; the erase or write runs after the
//     GETSTATUS answer and holds the control pipe meanwhile (STM32F407 datasheet: 16 KiB
//     sector erase 250 ms, 64 KiB 550 ms, 128 KiB 1 s, word program 16 µs typical).
//     Leave (zero-length download) jumps to the application, which does not speak USB:
//     the device leaves the bus until it is started in its bootloader again.
//
// A Device serves any transport: the in-process Host of this package (tests), or a Linux
// USB gadget through FunctionFS (sim/usblab). Its flash lives in a file, so the device
// outlives the process that serves it.
package dfudev

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
)

// Profiles.
const (
	ProfileZephyr = "zephyr"
	ProfileSTM32  = "stm32"
)

// Setup is a control request's setup packet.
type Setup struct {
	RequestType uint8
	Request     uint8
	Value       uint16
	Index       uint16
	Length      uint16
}

// In says whether the request reads from the device.
func (s Setup) In() bool { return s.RequestType&0x80 != 0 }

// ErrStall is the device's STALL answer to a request; ErrGone the answer of a device
// that is not on the bus.
var (
	ErrStall = dfu.ErrStall
	ErrGone  = dfu.ErrGone
)

// Descriptors are what the device enumerates with in its current mode.
type Descriptors struct {
	VendorID, ProductID, BcdDevice uint16
	Manufacturer, Product, Serial  string
	// Protocol is the DFU interface's bInterfaceProtocol: 1 run-time, 2 DFU mode.
	Protocol   uint8
	AltNames   []string // one alternate setting per name
	Functional dfu.Functional
}

// Options configure a Device.
type Options struct {
	Profile string
	// Serial is the USB serial number; "" takes a fixed one per profile.
	Serial string
	// TimeScale multiplies every flash and detach time of the profile: 1 is the
	// upstream timing, 0 runs without delays (unit tests), 0.1 ten times faster.
	TimeScale float64
	// Zephyr Kconfig options (ProfileZephyr).
	Upload    bool // CONFIG_USB_DFU_ENABLE_UPLOAD
	Reboot    bool // CONFIG_USB_DFU_REBOOT
	Permanent bool // CONFIG_USB_DFU_PERMANENT_DOWNLOAD
	// Initial is the MCUboot image a new Zephyr twin's primary slot holds (the application
	// it runs); without one the twin comes up in DFU mode.
	Initial []byte
	// StartInDFU starts the device in DFU mode (a Zephyr device is in its application;
	// an STM32 always starts in the DFU bootloader).
	StartInDFU bool
	// StallBlock, when > 0, stalls the DNLOAD of that data block once (counting data
	// blocks from 1 in the device's whole life), as a device that lost a packet does: the
	// device goes to dfuERROR with errSTALLEDPKT until CLRSTATUS.
	StallBlock int
}

// Stats count what the device saw.
type Stats struct {
	Requests     int
	DataBlocks   int
	DataBytes    int64
	Erases       int
	Uploads      int
	Stalls       int
	ClrStatus    int
	Detaches     int
	Enumerations int
}

// Bus is how the device tells its transport to take it off the bus or put it back (with
// the Descriptors of its new mode).
type Bus interface {
	Detach()
	Attach()
}

// Device is one virtual DFU device.
type Device struct {
	mu   sync.Mutex
	opt  Options
	bus  Bus
	impl profile

	state   dfu.State
	status  dfu.Status
	alt     int
	stats   Stats
	blocks  int // data blocks ever received, for StallBlock
	stalled bool
	closed  bool
}

// profile is one firmware's behaviour.
type profile interface {
	descriptors() Descriptors
	// setup handles a class request; the device's lock is held. A nil reply with a nil
	// error is a zero-length answer. after, when set, runs once the answer was sent,
	// without the lock (the work the firmware does after the status stage).
	setup(d *Device, s Setup, data []byte) (reply []byte, after func(), err error)
	setAlt(d *Device, alt int) error
	busReset(d *Device)
	close() error
}

// New opens the device whose flash is in path (created when missing).
func New(path string, opt Options) (*Device, error) {
	d := &Device{opt: opt}
	var err error
	switch opt.Profile {
	case ProfileZephyr, "":
		d.opt.Profile = ProfileZephyr
		d.impl, err = newZephyr(d, path)
	case ProfileSTM32:
		d.impl, err = newSTM32(d, path)
	default:
		return nil, fmt.Errorf("dfudev: profile %q: use %s or %s", opt.Profile, ProfileZephyr, ProfileSTM32)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SetBus connects the device to its transport.
func (d *Device) SetBus(b Bus) {
	d.mu.Lock()
	d.bus = b
	d.mu.Unlock()
}

// Descriptors returns what the device enumerates with now.
func (d *Device) Descriptors() Descriptors {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch p := d.impl.(type) {
	case *zephyr:
		return d.zephyrDescriptors(p)
	case *stm32:
		return d.stm32Descriptors(p)
	}
	return d.impl.descriptors()
}

// State returns the DFU state.
func (d *Device) State() dfu.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Stats returns the counts so far.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// SetAlt is the host's SET_INTERFACE.
func (d *Device) SetAlt(alt int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.impl.setAlt(d, alt)
}

// BusReset is a USB reset by the host.
func (d *Device) BusReset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.impl.busReset(d)
}

// Setup answers one class request to the DFU interface. The reply of an IN request is at
// most s.Length bytes. Work the firmware does after the status stage (flash writes)
// runs before Setup returns, so a transport that answers the next request only after
// Setup returned holds the host meanwhile, as a device busy writing flash does.
func (d *Device) Setup(s Setup, data []byte, sent func([]byte) error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("dfudev: device closed")
	}
	d.stats.Requests++
	reply, after, err := d.impl.setup(d, s, data)
	if err != nil {
		d.stats.Stalls++
	}
	d.mu.Unlock()
	if err == nil && sent != nil {
		if s.In() && len(reply) > int(s.Length) {
			reply = reply[:s.Length]
		}
		err = sent(reply)
	}
	if after != nil {
		after()
	}
	return err
}

// Admit is called by a transport with a request's setup packet before its data stage:
// a fault that stalls the request (Options.StallBlock) must answer before the data is
// taken, as a device's USB controller does.
func (d *Device) Admit(s Setup) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.In() || s.Request != dfu.ReqDnload || s.Length == 0 {
		return nil
	}
	switch d.opt.Profile {
	case ProfileZephyr:
		if d.state != dfu.StateIdle && d.state != dfu.StateDnloadIdle {
			return nil
		}
	case ProfileSTM32:
		if s.Value < 2 || (d.state != dfu.StateIdle && d.state != dfu.StateDnloadIdle) {
			return nil
		}
	}
	d.blocks++
	if d.opt.StallBlock > 0 && d.blocks == d.opt.StallBlock && !d.stalled {
		d.stalled = true
		d.stats.Stalls++
		return d.stall(dfu.StatusErrStalledPkt)
	}
	return nil
}

// stall puts the device in dfuERROR with status, as DFU 1.1 asks of a request that does
// not fit the state, and answers STALL.
func (d *Device) stall(status dfu.Status) error {
	d.state, d.status = dfu.StateError, status
	return ErrStall
}

func (d *Device) sleep(t time.Duration) {
	if d.opt.TimeScale > 0 && t > 0 {
		time.Sleep(time.Duration(float64(t) * d.opt.TimeScale))
	}
}

// detachAfter takes the device off the bus and, after t, puts it back with the
// descriptors change made, as a firmware that re-enumerates does.
func (d *Device) reenumerate(t time.Duration, change func()) {
	bus := d.bus
	if bus != nil {
		bus.Detach()
	}
	go func() {
		d.sleep(t)
		d.mu.Lock()
		if change != nil {
			change()
		}
		d.stats.Enumerations++
		closed := d.closed
		d.mu.Unlock()
		if bus != nil && !closed {
			bus.Attach()
		}
	}()
}

// Close releases the flash file.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.impl.close()
}

// getStatus answers GETSTATUS with the device's status and state.
func (d *Device) statusReply(poll time.Duration) []byte {
	return dfu.StatusReply{Status: d.status, PollTimeout: poll, State: d.state}.Bytes()
}
