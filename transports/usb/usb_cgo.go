//go:build cgo && !nolibusb

package usb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/gousb"
)

const available = true

// Every List and Open scans the bus with a libusb context of its own, closed with the
// device: a context's device list follows hotplug only through udev's daemon, which a
// minimal system (a recovery image, the lab's VM) does not run, and a fresh scan is cheap.
func newContext() *gousb.Context { return gousb.NewContext() }

func descOf(d *gousb.DeviceDesc) Desc {
	out := Desc{Bus: d.Bus, Address: d.Address, Ports: append([]int(nil), d.Path...),
		VendorID: uint16(d.Vendor), ProductID: uint16(d.Product), BcdDevice: uint16(d.Device)}
	for _, c := range d.Configs {
		for _, it := range c.Interfaces {
			for _, a := range it.AltSettings {
				out.Interfaces = append(out.Interfaces, InterfaceDesc{Config: c.Number, Number: it.Number, Alt: a.Alternate,
					Class: uint8(a.Class), SubClass: uint8(a.SubClass), Protocol: uint8(a.Protocol)})
			}
		}
	}
	return out
}

// List describes every device on every bus without opening any.
func List() ([]Desc, error) {
	var out []Desc
	c := newContext()
	defer c.Close()
	_, err := c.OpenDevices(func(d *gousb.DeviceDesc) bool {
		out = append(out, descOf(d))
		return false
	})
	if err != nil {
		return out, mapErr("listing USB devices", err)
	}
	return out, nil
}

// Device is one open USB device.
type Device struct {
	mu   sync.Mutex
	ctx  *gousb.Context
	dev  *gousb.Device
	desc Desc
	cfg  *gousb.Config
	intf *gousb.Interface
}

// Open opens the first device match accepts.
func Open(match func(Desc) bool) (*Device, error) {
	var first *gousb.Device
	c := newContext()
	devs, err := c.OpenDevices(func(d *gousb.DeviceDesc) bool {
		return match(descOf(d))
	})
	for _, d := range devs {
		if first == nil {
			first = d
		} else {
			d.Close()
		}
	}
	if first == nil {
		c.Close()
		if err != nil {
			return nil, mapErr("opening the USB device", err)
		}
		return nil, fmt.Errorf("usb: no such device: %w", ErrGone)
	}
	first.SetAutoDetach(true)
	return &Device{ctx: c, dev: first, desc: descOf(first.Desc)}, nil
}

// Desc is the device's description.
func (d *Device) Desc() Desc { return d.desc }

func (d *Device) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if t := time.Until(dl); t > 0 {
			return t
		}
		return time.Millisecond
	}
	return 5 * time.Second
}

// Control runs one control transfer. Its timeout is the context's deadline (5 s without
// one).
func (d *Device) Control(ctx context.Context, rType, req uint8, val, idx uint16, data []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return 0, fmt.Errorf("usb: device closed: %w", ErrGone)
	}
	d.dev.ControlTimeout = d.timeout(ctx)
	n, err := d.dev.Control(rType, req, val, idx, data)
	if err != nil {
		return n, mapErr(fmt.Sprintf("control request 0x%02x/0x%02x", rType, req), err)
	}
	return n, nil
}

// ConfigDescriptor reads the whole configuration descriptor number index (GET_DESCRIPTOR),
// class-specific descriptors included.
func (d *Device) ConfigDescriptor(ctx context.Context, index int) ([]byte, error) {
	head := make([]byte, 9)
	n, err := d.Control(ctx, 0x80, 0x06, 0x0200|uint16(index), 0, head)
	if err != nil {
		return nil, err
	}
	if n < 4 {
		return nil, fmt.Errorf("usb: configuration descriptor of %d bytes", n)
	}
	total := int(head[2]) | int(head[3])<<8
	if total < 9 {
		return nil, fmt.Errorf("usb: configuration descriptor says wTotalLength %d", total)
	}
	full := make([]byte, total)
	n, err = d.Control(ctx, 0x80, 0x06, 0x0200|uint16(index), 0, full)
	if err != nil {
		return nil, err
	}
	return full[:n], nil
}

// String reads string descriptor index in US English.
func (d *Device) String(ctx context.Context, index uint8) (string, error) {
	if index == 0 {
		return "", nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return "", ErrGone
	}
	d.dev.ControlTimeout = d.timeout(ctx)
	s, err := d.dev.GetStringDescriptor(int(index))
	if err != nil {
		return "", mapErr("reading a string descriptor", err)
	}
	return s, nil
}

// Strings reads the manufacturer, product and serial number strings; a string the device
// does not answer is empty.
func (d *Device) Strings(ctx context.Context) (manufacturer, product, serial string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return
	}
	d.dev.ControlTimeout = d.timeout(ctx)
	manufacturer, _ = d.dev.Manufacturer()
	product, _ = d.dev.Product()
	serial, _ = d.dev.SerialNumber()
	return
}

// Claim selects configuration config (if it is not active), claims interface iface and
// selects its alternate setting alt (SET_INTERFACE).
func (d *Device) Claim(config, iface, alt int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return ErrGone
	}
	if d.intf != nil {
		d.intf.Close()
		d.intf = nil
	}
	if d.cfg == nil {
		cfg, err := d.dev.Config(config)
		if err != nil {
			return mapErr(fmt.Sprintf("selecting configuration %d", config), err)
		}
		d.cfg = cfg
	}
	intf, err := d.cfg.Interface(iface, alt)
	if err != nil {
		return mapErr(fmt.Sprintf("claiming interface %d alternate setting %d", iface, alt), err)
	}
	d.intf = intf
	return nil
}

// Reset resets the device's port; the device re-enumerates and this Device is done.
func (d *Device) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return ErrGone
	}
	// gousb resets only a device with no claimed configuration.
	if d.intf != nil {
		d.intf.Close()
		d.intf = nil
	}
	if d.cfg != nil {
		d.cfg.Close()
		d.cfg = nil
	}
	if err := d.dev.Reset(); err != nil {
		return mapErr("USB reset", err)
	}
	return nil
}

// Close releases the interface and the device.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return nil
	}
	if d.intf != nil {
		d.intf.Close()
	}
	if d.cfg != nil {
		d.cfg.Close()
	}
	err := d.dev.Close()
	d.ctx.Close()
	d.dev, d.cfg, d.intf, d.ctx = nil, nil, nil, nil
	return err
}

// mapErr turns libusb's errors into this package's.
func mapErr(op string, err error) error {
	var ue gousb.Error
	var ts gousb.TransferStatus
	switch {
	case errors.As(err, &ue):
		switch ue {
		case gousb.ErrorPipe:
			return fmt.Errorf("usb: %s: %w", op, ErrStall)
		case gousb.ErrorNoDevice, gousb.ErrorNotFound, gousb.ErrorIO:
			return fmt.Errorf("usb: %s: %v: %w", op, ue, ErrGone)
		case gousb.ErrorTimeout:
			return &timeoutError{op: "usb: " + op}
		case gousb.ErrorAccess:
			return fmt.Errorf("usb: %s: %w (on Linux install the udev rule from the README; on Windows the device needs the WinUSB driver)", op, ErrAccess)
		}
	case errors.As(err, &ts):
		switch ts {
		case gousb.TransferStall:
			return fmt.Errorf("usb: %s: %w", op, ErrStall)
		case gousb.TransferNoDevice:
			return fmt.Errorf("usb: %s: %w", op, ErrGone)
		case gousb.TransferTimedOut:
			return &timeoutError{op: "usb: " + op}
		}
	}
	return fmt.Errorf("usb: %s: %w", op, err)
}
