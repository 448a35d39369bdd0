package dfu

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Conn is one open DFU interface of one USB device: the class requests of DFU 1.1 go over
// its control pipe with the interface as recipient. transports/usb implements it with
// gousb; sim/dfudev implements it in process for tests.
//
// Errors: a request the device stalled wraps ErrStall; a device that left the bus wraps
// ErrGone. Both are what a real cable and a real device do, and the driver handles them.
type Conn interface {
	// ControlOut sends a class request (bmRequestType 0x21) with data (may be empty).
	ControlOut(ctx context.Context, request uint8, value uint16, data []byte) error
	// ControlIn sends a class request (bmRequestType 0xa1) and reads the answer into buf.
	ControlIn(ctx context.Context, request uint8, value uint16, buf []byte) (int, error)
	// SetAlt selects an alternate setting of the DFU interface.
	SetAlt(ctx context.Context, alt int) error
	// Reset resets the device's USB port; the device re-enumerates (or leaves).
	Reset(ctx context.Context) error
	// Info is what the descriptors said when the device was opened.
	Info() *DeviceInfo
	Close() error
}

// Errors a Conn wraps.
var (
	// ErrStall: the device answered the request with a STALL handshake. DFU devices stall
	// a request that does not fit their state and go to dfuERROR.
	ErrStall = errors.New("the device stalled the request")
	// ErrGone: the device is no longer on the bus (unplugged, reset, or it re-enumerated).
	ErrGone = errors.New("the device left the USB bus")
)

// DeviceInfo describes one DFU interface of a USB device.
type DeviceInfo struct {
	VendorID     uint16 `json:"vendor_id"`
	ProductID    uint16 `json:"product_id"`
	BcdDevice    uint16 `json:"bcd_device"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	Serial       string `json:"serial,omitempty"`
	// Path is where the device sits on the host: "bus 1 port 2.4", stable across a
	// re-enumeration on the same port.
	Path string `json:"path,omitempty"`
	// Bus and Ports locate the device (Ports is the port chain from the root hub).
	Bus   int   `json:"bus"`
	Ports []int `json:"ports,omitempty"`
	// Config is the bConfigurationValue of the configuration holding the interface.
	Config    int `json:"config"`
	Interface int `json:"interface"`
	// Protocol is ProtocolRuntime (the application's DFU interface) or ProtocolDFUMode.
	Protocol   int        `json:"protocol"`
	Alts       []Alt      `json:"alts"`
	Functional Functional `json:"functional"`
	// RuntimeVendorID and RuntimeProductID are the ids the device had in its application
	// before it was detached into DFU mode (0 when it was found in DFU mode).
	RuntimeVendorID  uint16 `json:"runtime_vendor_id,omitempty"`
	RuntimeProductID uint16 `json:"runtime_product_id,omitempty"`
}

// Alt is one alternate setting of a DFU interface.
type Alt struct {
	Setting int     `json:"setting"`
	Name    string  `json:"name,omitempty"`
	Layout  *Layout `json:"layout,omitempty"` // DfuSe memory layout parsed from Name
	// LayoutErr says why a name that starts with '@' is not a layout.
	LayoutErr string `json:"layout_error,omitempty"`
}

// Runtime says whether the interface is the application's run-time DFU interface: the
// device must be detached into DFU mode before it takes a download.
func (d *DeviceInfo) Runtime() bool { return d.Protocol == ProtocolRuntime }

// DfuSe says whether the device speaks ST's DfuSe extension.
func (d *DeviceInfo) DfuSe() bool {
	if d.Functional.Version == VersionDfuSe {
		return true
	}
	for _, a := range d.Alts {
		if a.Layout != nil {
			return d.Functional.Version != Version11 && d.Functional.Version != Version10
		}
	}
	return false
}

// Alt returns alternate setting n.
func (d *DeviceInfo) Alt(n int) (Alt, bool) {
	for _, a := range d.Alts {
		if a.Setting == n {
			return a, true
		}
	}
	return Alt{}, false
}

// ID prints the device as "0483:df11".
func (d *DeviceInfo) ID() string { return fmt.Sprintf("%04x:%04x", d.VendorID, d.ProductID) }

// String names the device for messages: "USB 0483:df11 serial 3276… (bus 1 port 2)".
func (d *DeviceInfo) String() string {
	s := "USB " + d.ID()
	if d.Serial != "" {
		s += " serial " + Printable(d.Serial)
	}
	if d.Path != "" {
		s += " (" + d.Path + ")"
	}
	return s
}

// Mode names the interface's mode in words.
func (d *DeviceInfo) Mode() string {
	if d.Runtime() {
		return "run-time (application)"
	}
	return "DFU mode"
}

// Printable escapes text a device sent (string descriptors) before it reaches a terminal:
// control characters and invalid UTF-8 become \x.. escapes.
func Printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == 0xfffd && len(s) > i && s[i] != 0xef:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
