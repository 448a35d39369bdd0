package dfu

import (
	"encoding/binary"
	"fmt"
)

// ConfigInterface is one alternate setting of one interface as a configuration
// descriptor lists it, with the DFU functional descriptor that follows it, if any.
type ConfigInterface struct {
	Number     int
	Alt        int
	Class      uint8
	SubClass   uint8
	Protocol   uint8
	IInterface uint8
	Functional *Functional
}

// IsDFU says whether the interface is a DFU interface (application specific class, DFU
// subclass).
func (c ConfigInterface) IsDFU() bool {
	return c.Class == InterfaceClass && c.SubClass == InterfaceSubClass
}

// Config is what ParseConfig read of a configuration descriptor.
type Config struct {
	Value      int // bConfigurationValue
	Interfaces []ConfigInterface
}

// Descriptor types of USB 2.0 chapter 9.
const (
	descConfig    = 0x02
	descInterface = 0x04
)

// ParseConfig reads a whole configuration descriptor (wTotalLength bytes, as GET_DESCRIPTOR
// returns it): every interface descriptor, and the DFU functional descriptor that follows a
// DFU interface. Some devices put the functional descriptor before the interface or once
// for all alternate settings; it is given to every alternate setting of the DFU interface
// it belongs to, as dfu-util does.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) < 9 || b[1] != descConfig || b[0] < 9 {
		return nil, fmt.Errorf("dfu: configuration descriptor: %d bytes, not a configuration descriptor", len(b))
	}
	total := int(binary.LittleEndian.Uint16(b[2:]))
	if total < 9 {
		return nil, fmt.Errorf("dfu: configuration descriptor says wTotalLength %d, less than its own 9 bytes", total)
	}
	if total < len(b) {
		b = b[:total]
	}
	c := &Config{Value: int(b[5])}
	var loose *Functional // a functional descriptor seen before any DFU interface
	cur := -1
	for off := int(b[0]); off < len(b); {
		l := int(b[off])
		if l < 2 || off+l > len(b) {
			return nil, fmt.Errorf("dfu: configuration descriptor: descriptor at byte %d has bLength %d, past the %d bytes", off, l, len(b))
		}
		d := b[off : off+l]
		switch d[1] {
		case descInterface:
			if l < 9 {
				return nil, fmt.Errorf("dfu: configuration descriptor: interface descriptor at byte %d has bLength %d, not 9", off, l)
			}
			c.Interfaces = append(c.Interfaces, ConfigInterface{Number: int(d[2]), Alt: int(d[3]), Class: d[5], SubClass: d[6], Protocol: d[7], IInterface: d[8]})
			cur = len(c.Interfaces) - 1
		case DescFunctional:
			f, err := ParseFunctional(d)
			if err != nil {
				return nil, err
			}
			if cur >= 0 && c.Interfaces[cur].IsDFU() {
				c.Interfaces[cur].Functional = &f
			} else {
				loose = &f
			}
		}
		off += l
	}
	// Give each DFU alternate setting its interface's functional descriptor.
	for i := range c.Interfaces {
		it := &c.Interfaces[i]
		if !it.IsDFU() || it.Functional != nil {
			continue
		}
		for _, o := range c.Interfaces {
			if o.Number == it.Number && o.IsDFU() && o.Functional != nil {
				it.Functional = o.Functional
				break
			}
		}
		if it.Functional == nil && loose != nil {
			it.Functional = loose
		}
	}
	return c, nil
}

// DecodeString reads a USB string descriptor (UTF-16LE after a 2-byte header).
func DecodeString(b []byte) (string, error) {
	if len(b) < 2 || b[1] != 0x03 {
		return "", fmt.Errorf("dfu: not a string descriptor")
	}
	n := int(b[0])
	if n > len(b) {
		n = len(b)
	}
	u := make([]rune, 0, (n-2)/2)
	for i := 2; i+1 < n; i += 2 {
		c := rune(binary.LittleEndian.Uint16(b[i:]))
		if c >= 0xd800 && c < 0xdc00 && i+3 < n {
			lo := rune(binary.LittleEndian.Uint16(b[i+2:]))
			if lo >= 0xdc00 && lo < 0xe000 {
				u = append(u, 0x10000+(c-0xd800)<<10+(lo-0xdc00))
				i += 2
				continue
			}
		}
		u = append(u, c)
	}
	return string(u), nil
}

// InfoFromConfig fills the DFU part of a DeviceInfo from a parsed configuration: the
// first DFU interface, its alternate settings, their names (name looks strings up by
// index) and the functional descriptor.
func InfoFromConfig(d *DeviceInfo, c *Config, name func(index uint8) string) bool {
	found := -1
	for _, it := range c.Interfaces {
		if !it.IsDFU() {
			continue
		}
		if found < 0 {
			found = it.Number
			d.Interface = it.Number
			d.Protocol = int(it.Protocol)
			d.Config = c.Value
			if it.Functional != nil {
				d.Functional = *it.Functional
			}
		}
		if it.Number != found {
			continue
		}
		a := Alt{Setting: it.Alt}
		if it.IInterface != 0 && name != nil {
			a.Name = name(it.IInterface)
		}
		if IsLayout(a.Name) {
			if l, err := ParseLayout(a.Name); err == nil {
				a.Layout = l
			} else {
				a.LayoutErr = err.Error()
			}
		}
		d.Alts = append(d.Alts, a)
	}
	return found >= 0
}
