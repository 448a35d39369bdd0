package dfu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/transports/usb"
)

// Bus is where DFU devices are found and opened: this machine's USB (SystemBus, through
// transports/usb and libusb), or a bus of virtual devices (sim/dfudev's Hub) that tests
// and the demo put in its place. The driver never sees a Bus, only the Conn it opened.
type Bus interface {
	// Find lists the DFU interfaces (run-time and DFU mode) of the devices that match.
	Find(ctx context.Context, m Match) ([]Found, error)
	// Open opens the first DFU interface that matches and claims it (alternate setting
	// 0). A device that is not there is an error wrapping ErrGone, at once: Open does not
	// wait for it.
	Open(ctx context.Context, m Match) (Conn, error)
}

// SystemBus is this machine's USB, through transports/usb (cgo and libusb; without them
// every call says that USB needs the full build).
//
// Its Find remembers what it read of each device (strings, configuration descriptor) for
// as long as the device stays at the same bus address: a live list that polls every
// second then costs no request to a device that is being flashed meanwhile. A device that
// re-enumerates gets a new address and is read afresh.
var SystemBus Bus = &systemBus{known: map[string]*DeviceInfo{}}

type systemBus struct {
	mu    sync.Mutex
	known map[string]*DeviceInfo // by busKey
}

func busKey(d usb.Desc) string {
	return fmt.Sprintf("%d/%d/%04x:%04x/%s", d.Bus, d.Address, d.VendorID, d.ProductID, d.SysfsName())
}

func (b *systemBus) Find(ctx context.Context, m Match) ([]Found, error) {
	descs, err := usb.List()
	if err != nil && len(descs) == 0 {
		return nil, err
	}
	present := map[string]bool{}
	for _, d := range descs {
		present[busKey(d)] = true
	}
	b.mu.Lock()
	for k := range b.known {
		if !present[k] {
			delete(b.known, k) // gone: whatever comes at this address later is read afresh
		}
	}
	b.mu.Unlock()
	var out []Found
	for _, d := range descs {
		if !m.desc(d) {
			continue
		}
		key := busKey(d)
		b.mu.Lock()
		info := b.known[key]
		b.mu.Unlock()
		if info == nil {
			var err error
			info, err = describeDesc(ctx, d)
			if err != nil {
				out = append(out, Found{Info: infoFromDesc(d), Err: err})
				continue
			}
			b.mu.Lock()
			b.known[key] = info
			b.mu.Unlock()
		}
		if m.Serial != "" && info.Serial != m.Serial {
			continue
		}
		c := *info
		c.Alts = append([]Alt(nil), info.Alts...)
		out = append(out, Found{Info: &c})
	}
	return out, nil
}

func (b *systemBus) Open(ctx context.Context, m Match) (Conn, error) { return OpenUSB(ctx, m) }

// describeDesc opens the device d names and reads its description.
func describeDesc(ctx context.Context, d usb.Desc) (*DeviceInfo, error) {
	dev, err := usb.Open(func(o usb.Desc) bool { return o.Bus == d.Bus && o.Address == d.Address })
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	return describeUSB(ctx, dev)
}

// Matches says whether the device info describes is one m picks.
func (m Match) Matches(info *DeviceInfo) bool {
	return (m.VendorID == 0 || m.VendorID == info.VendorID) && (m.ProductID == 0 || m.ProductID == info.ProductID) &&
		(m.Port == "" || m.Port == info.Path) && (m.Serial == "" || m.Serial == info.Serial)
}

// MatchOf is the Match that picks this very device again: its ids and its serial number,
// or its port when it has none.
func MatchOf(info *DeviceInfo) Match {
	m := Match{VendorID: info.VendorID, ProductID: info.ProductID, Serial: info.Serial}
	if m.Serial == "" {
		m.Port = info.Path
	}
	return m
}

// ReopenOn finds the device of info again on bus after it re-enumerated: by serial number
// where it has one (its ids may change between run-time and DFU mode), else on the same
// port. It waits until the device is there or ctx ends.
func ReopenOn(bus Bus, info *DeviceInfo) Reopen {
	m := Match{Serial: info.Serial}
	if m.Serial == "" {
		m.Port = info.Path
	}
	return func(ctx context.Context) (Conn, error) {
		for {
			c, err := bus.Open(ctx, m)
			if err == nil || !errors.Is(err, ErrGone) {
				return c, err
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return nil, fmt.Errorf("%s did not come back on USB: %w", info, ErrGone)
			}
		}
	}
}
