package dfu

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/transports/usb"
)

// USB devices through transports/usb (gousb, cgo). Without cgo every call says that USB
// needs the full build (usb.ErrNeedsFullBuild).

// Match picks USB devices: zero fields match anything.
type Match struct {
	VendorID  uint16
	ProductID uint16
	Serial    string
	// Port is where the device sits ("1-2.4", as Linux names ports); it survives a
	// re-enumeration with new ids.
	Port string
}

// ParseMatch reads "VID:PID", "VID:PID,SERIAL" or "VID:PID@PORT" (hex ids, as lsusb
// prints them; PORT as Linux names it, "1-2.4", for a device without a serial number).
func ParseMatch(s string) (Match, error) {
	rest, port := s, ""
	if i := strings.LastIndexByte(s, '@'); i >= 0 && portRE.MatchString(s[i+1:]) {
		rest, port = s[:i], s[i+1:]
	}
	ids, serial, _ := strings.Cut(rest, ",")
	v, p, ok := strings.Cut(ids, ":")
	var m Match
	if ok {
		var err1, err2 error
		var vv, pp uint64
		_, err1 = fmt.Sscanf(v, "%x", &vv)
		_, err2 = fmt.Sscanf(p, "%x", &pp)
		ok = err1 == nil && err2 == nil && vv <= 0xffff && pp <= 0xffff && len(v) <= 4 && len(p) <= 4
		m.VendorID, m.ProductID = uint16(vv), uint16(pp)
	}
	if !ok {
		return Match{}, fmt.Errorf("%q: give the USB device as VID:PID or VID:PID,SERIAL in hex, e.g. 0483:df11 (fieldflash devices lists them)", s)
	}
	m.Serial, m.Port = serial, port
	return m, nil
}

// portRE is a Linux USB port name: bus, dash, the port chain.
var portRE = regexp.MustCompile(`^[0-9]+-[0-9]+(\.[0-9]+)*$`)

// Spec is m as ParseMatch reads it: "0483:df11,325A36713137" or "0483:df11@1-2.4".
func (m Match) Spec() string {
	s := fmt.Sprintf("%04x:%04x", m.VendorID, m.ProductID)
	if m.Serial != "" {
		s += "," + m.Serial
	}
	if m.Port != "" {
		s += "@" + m.Port
	}
	return s
}

func (m Match) String() string {
	s := fmt.Sprintf("%04x:%04x", m.VendorID, m.ProductID)
	if m.Serial != "" {
		s += "," + m.Serial
	}
	if m.Port != "" {
		s += " on port " + m.Port
	}
	return s
}

func (m Match) desc(d usb.Desc) bool {
	return (m.VendorID == 0 || m.VendorID == d.VendorID) && (m.ProductID == 0 || m.ProductID == d.ProductID) &&
		(m.Port == "" || m.Port == d.SysfsName()) && d.HasInterface(InterfaceClass, InterfaceSubClass)
}

// Found is one DFU interface on the bus, as Find lists it; Err says what could not be
// read (typically permission: the udev rule is missing).
type Found struct {
	Info *DeviceInfo
	Err  error
}

// Find lists the DFU interfaces (run-time and DFU mode) of the USB devices that match,
// reading each afresh (SystemBus.Find remembers what it read).
func Find(ctx context.Context, m Match) ([]Found, error) {
	descs, err := usb.List()
	if err != nil && len(descs) == 0 {
		return nil, err
	}
	var out []Found
	for _, d := range descs {
		if !m.desc(d) {
			continue
		}
		info, err := describeDesc(ctx, d)
		if err != nil {
			out = append(out, Found{Info: infoFromDesc(d), Err: err})
			continue
		}
		if m.Serial != "" && info.Serial != m.Serial {
			continue
		}
		out = append(out, Found{Info: info})
	}
	return out, nil
}

func infoFromDesc(d usb.Desc) *DeviceInfo {
	info := &DeviceInfo{VendorID: d.VendorID, ProductID: d.ProductID, BcdDevice: d.BcdDevice, Bus: d.Bus, Ports: d.Ports, Path: d.SysfsName()}
	for _, it := range d.Interfaces {
		if it.Class == InterfaceClass && it.SubClass == InterfaceSubClass {
			info.Protocol = int(it.Protocol)
			info.Interface = it.Number
			info.Config = it.Config
			break
		}
	}
	return info
}

// describeUSB reads a device's strings and its DFU interface from the configuration
// descriptor.
func describeUSB(ctx context.Context, dev *usb.Device) (*DeviceInfo, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := dev.Desc()
	info := infoFromDesc(d)
	info.Manufacturer, info.Product, info.Serial = dev.Strings(c)
	idx := 0
	for _, it := range d.Interfaces {
		if it.Class == InterfaceClass && it.SubClass == InterfaceSubClass && it.Config > 0 {
			idx = it.Config - 1 // configurations are numbered from 1, their indexes from 0
			break
		}
	}
	raw, err := dev.ConfigDescriptor(c, idx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration descriptor of %s: %w", info, err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info, err)
	}
	names := map[uint8]string{}
	if !InfoFromConfig(info, cfg, func(i uint8) string {
		if s, ok := names[i]; ok {
			return s
		}
		s, _ := dev.String(c, i)
		names[i] = s
		return s
	}) {
		return nil, fmt.Errorf("%s has no DFU interface in its configuration", info)
	}
	return info, nil
}

// OpenUSB opens the first DFU interface that matches and claims it (alternate setting 0).
func OpenUSB(ctx context.Context, m Match) (Conn, error) {
	descs, err := usb.List()
	if err != nil && len(descs) == 0 {
		return nil, err
	}
	var lastErr error
	for _, d := range descs {
		if !m.desc(d) {
			continue
		}
		dev, err := usb.Open(func(o usb.Desc) bool { return o.Bus == d.Bus && o.Address == d.Address })
		if err != nil {
			lastErr = err
			continue
		}
		info, err := describeUSB(ctx, dev)
		if err == nil && m.Serial != "" && info.Serial != m.Serial {
			dev.Close()
			continue
		}
		if err == nil {
			err = dev.Claim(info.Config, info.Interface, 0)
		}
		if err != nil {
			dev.Close()
			lastErr = err
			continue
		}
		return &usbConn{dev: dev, info: info, alt: 0}, nil
	}
	if lastErr != nil {
		return nil, toDFUErr(lastErr)
	}
	return nil, fmt.Errorf("no USB DFU device %s is connected: %w", m, ErrGone)
}

// ReopenUSB finds the device of info again after it re-enumerated: by serial number where
// it has one (its ids may change between run-time and DFU mode), else on the same port.
func ReopenUSB(info *DeviceInfo) Reopen { return ReopenOn(SystemBus, info) }

type usbConn struct {
	dev  *usb.Device
	info *DeviceInfo
	alt  int
}

func toDFUErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, usb.ErrStall):
		return fmt.Errorf("%v: %w", err, ErrStall)
	case errors.Is(err, usb.ErrGone):
		return fmt.Errorf("%v: %w", err, ErrGone)
	}
	return err
}

func (c *usbConn) ControlOut(ctx context.Context, req uint8, value uint16, data []byte) error {
	_, err := c.dev.Control(ctx, 0x21, req, value, uint16(c.info.Interface), data)
	return toDFUErr(err)
}

func (c *usbConn) ControlIn(ctx context.Context, req uint8, value uint16, buf []byte) (int, error) {
	n, err := c.dev.Control(ctx, 0xa1, req, value, uint16(c.info.Interface), buf)
	return n, toDFUErr(err)
}

func (c *usbConn) SetAlt(ctx context.Context, alt int) error {
	if err := c.dev.Claim(c.info.Config, c.info.Interface, alt); err != nil {
		return toDFUErr(err)
	}
	c.alt = alt
	return nil
}

func (c *usbConn) Reset(ctx context.Context) error { return toDFUErr(c.dev.Reset()) }
func (c *usbConn) Info() *DeviceInfo               { return c.info }
func (c *usbConn) Close() error                    { return c.dev.Close() }
