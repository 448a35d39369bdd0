// Package usb reaches USB devices through libusb (github.com/google/gousb): it lists
// devices with their descriptors, opens one, claims an interface and alternate setting,
// and runs control transfers with timeouts taken from a context. It knows no device
// class; flasher/dfu speaks DFU over it.
//
// gousb needs cgo and libusb-1.0 (Debian: libusb-1.0-0-dev). A build with
// CGO_ENABLED=0 still compiles this package, and every call returns ErrNeedsFullBuild, so
// that everything else builds and tests without a C toolchain.
package usb

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the package wraps.
var (
	// ErrStall: the device answered with a STALL handshake (LIBUSB_ERROR_PIPE).
	ErrStall = errors.New("the device stalled the request")
	// ErrGone: the device is no longer on the bus.
	ErrGone = errors.New("the device left the USB bus")
	// ErrNeedsFullBuild: this fieldflash was built without cgo, so without libusb.
	// The Windows release is such a build (-tags nolibusb): Debian, where it is cross-built,
	// has no libusb for mingw-w64 (docs/packaging.md).
	ErrNeedsFullBuild = errors.New("USB needs the full build of fieldflash (built with cgo and libusb-1.0); this one was built without libusb and can only reach serial ports")
	// ErrAccess: the operating system did not let fieldflash open the device.
	ErrAccess = errors.New("no permission to open the USB device")
)

// Available says whether this build can reach USB devices.
const Available = available

// timeoutError is a control transfer that timed out (flasher.IsTransient reads Timeout).
type timeoutError struct{ op string }

func (e *timeoutError) Error() string { return e.op + ": timed out" }
func (e *timeoutError) Timeout() bool { return true }

// Desc is what the device descriptor and the bus say of a device, without opening it.
type Desc struct {
	Bus       int
	Address   int
	Ports     []int // the port chain from the root hub
	VendorID  uint16
	ProductID uint16
	BcdDevice uint16
	// Interfaces lists every alternate setting of every interface of every configuration.
	Interfaces []InterfaceDesc
}

// InterfaceDesc is one alternate setting as the configuration lists it.
type InterfaceDesc struct {
	Config, Number, Alt       int
	Class, SubClass, Protocol uint8
}

// Path prints where the device sits: "bus 1 port 2.4".
func (d Desc) Path() string {
	if len(d.Ports) == 0 {
		return fmt.Sprintf("bus %d device %d", d.Bus, d.Address)
	}
	p := make([]string, len(d.Ports))
	for i, n := range d.Ports {
		p[i] = fmt.Sprint(n)
	}
	return fmt.Sprintf("bus %d port %s", d.Bus, strings.Join(p, "."))
}

// SysfsName is the Linux name of the port ("1-2.4"), what udev rules and sysfs use.
func (d Desc) SysfsName() string {
	p := make([]string, len(d.Ports))
	for i, n := range d.Ports {
		p[i] = fmt.Sprint(n)
	}
	return fmt.Sprintf("%d-%s", d.Bus, strings.Join(p, "."))
}

// HasInterface says whether any alternate setting has this class and subclass.
func (d Desc) HasInterface(class, subclass uint8) bool {
	for _, it := range d.Interfaces {
		if it.Class == class && it.SubClass == subclass {
			return true
		}
	}
	return false
}

// SamePort says whether two descriptions sit on the same physical port.
func (d Desc) SamePort(o Desc) bool {
	if d.Bus != o.Bus || len(d.Ports) != len(o.Ports) || len(d.Ports) == 0 {
		return false
	}
	for i := range d.Ports {
		if d.Ports[i] != o.Ports[i] {
			return false
		}
	}
	return true
}
