package dfudev

import (
	"context"
	"fmt"
	"sync"

	"github.com/fieldflash/fieldflash/flasher/dfu"
)

// Host is an in-process USB host for one Device: it opens dfu.Conn values on it the way
// transports/usb opens a real device, and notices when the device leaves the bus (a
// detach, a reboot, a leave, or Unplug). It stands below the USB boundary, which the lab
// (sim/usblab) crosses for real with a Linux gadget, libusb and gousb.
type Host struct {
	dev  *Device
	path string // where the device sits on the simulated bus

	mu       sync.Mutex
	attached bool
	gen      int // enumerations: a Conn of an earlier one is gone
	changed  chan struct{}
	pulled   bool // Unplug: the cable is out whatever the device does
	// cutAfter, when >= 0, pulls the cable once that many more data bytes went out.
	cutAfter int64
}

// NewHost connects dev to a new host and enumerates it.
func NewHost(dev *Device) *Host {
	h := &Host{dev: dev, path: "simulated bus", attached: !dev.Left(), changed: make(chan struct{}), cutAfter: -1}
	dev.SetBus(h)
	return h
}

func (h *Host) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Detach is the device leaving the bus (Bus).
func (h *Host) Detach() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.attached {
		h.attached = false
		h.gen++
		h.notify()
	}
}

// Attach is the device enumerating again (Bus).
func (h *Host) Attach() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.attached {
		h.attached = true
		h.gen++
		h.notify()
	}
}

// Unplug pulls the cable: every Conn fails with dfu.ErrGone until Replug.
func (h *Host) Unplug() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pulled = true
	h.gen++
	h.notify()
}

// Replug puts the cable back.
func (h *Host) Replug() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pulled = false
	h.gen++
	h.notify()
}

// UnplugAfter pulls the cable once n more bytes of DNLOAD data went to the device.
func (h *Host) UnplugAfter(n int64) {
	h.mu.Lock()
	h.cutAfter = n
	h.mu.Unlock()
}

// Present says whether the device is on the bus.
func (h *Host) Present() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attached && !h.pulled
}

// Open waits until the device is on the bus and opens its DFU interface.
func (h *Host) Open(ctx context.Context) (dfu.Conn, error) {
	for {
		if c, ok := h.openNow(); ok {
			return c, nil
		}
		h.mu.Lock()
		ch := h.changed
		attached := h.attached && !h.pulled
		h.mu.Unlock()
		if attached {
			continue // it came back meanwhile
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("dfudev: no device on the bus: %w", dfu.ErrGone)
		}
	}
}

// openNow opens the DFU interface if the device is on the bus now.
//
// The descriptors are read without the host's lock: the device holds its own lock when it
// leaves the bus (Detach takes the host's), so the two are never taken the other way
// round.
func (h *Host) openNow() (dfu.Conn, bool) {
	for {
		h.mu.Lock()
		gen := h.gen
		h.mu.Unlock()
		info := h.info()
		h.mu.Lock()
		switch {
		case !h.attached || h.pulled:
			h.mu.Unlock()
			return nil, false
		case h.gen == gen:
			h.mu.Unlock()
			return &hostConn{h: h, gen: gen, info: info}, true
		}
		h.mu.Unlock() // it re-enumerated while its descriptors were read: read them again
	}
}

func (h *Host) info() *dfu.DeviceInfo {
	desc := h.dev.Descriptors()
	info := &dfu.DeviceInfo{
		VendorID: desc.VendorID, ProductID: desc.ProductID, BcdDevice: desc.BcdDevice,
		Manufacturer: desc.Manufacturer, Product: desc.Product, Serial: desc.Serial,
		Path: h.path, Config: 1, Protocol: int(desc.Protocol), Functional: desc.Functional,
	}
	for i, n := range desc.AltNames {
		a := dfu.Alt{Setting: i, Name: n}
		if dfu.IsLayout(n) {
			a.Layout, _ = dfu.ParseLayout(n)
		}
		info.Alts = append(info.Alts, a)
	}
	return info
}

type hostConn struct {
	h    *Host
	gen  int
	info *dfu.DeviceInfo
}

func (c *hostConn) live() error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.gen != c.h.gen || !c.h.attached || c.h.pulled {
		return dfu.ErrGone
	}
	return nil
}

func (c *hostConn) setup(ctx context.Context, s Setup, data []byte, sent func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.live(); err != nil {
		return err
	}
	if s.Request == dfu.ReqDnload && len(data) > 0 {
		c.h.mu.Lock()
		cut := false
		if c.h.cutAfter >= 0 {
			c.h.cutAfter -= int64(len(data))
			if c.h.cutAfter < 0 {
				cut = true
				c.h.cutAfter = -1
			}
		}
		c.h.mu.Unlock()
		if cut {
			c.h.Unplug()
			return dfu.ErrGone
		}
	}
	if err := c.h.dev.Admit(s); err != nil {
		return err
	}
	err := c.h.dev.Setup(s, data, sent)
	if lerr := c.live(); lerr != nil && err == nil && s.Request != dfu.ReqGetStatus {
		return nil // the answer went out just before the device left
	}
	return err
}

func (c *hostConn) ControlOut(ctx context.Context, req uint8, value uint16, data []byte) error {
	return c.setup(ctx, Setup{RequestType: 0x21, Request: req, Value: value, Index: uint16(c.info.Interface), Length: uint16(len(data))}, data, nil)
}

func (c *hostConn) ControlIn(ctx context.Context, req uint8, value uint16, buf []byte) (int, error) {
	n := 0
	err := c.setup(ctx, Setup{RequestType: 0xa1, Request: req, Value: value, Index: uint16(c.info.Interface), Length: uint16(len(buf))}, nil, func(b []byte) error {
		n = copy(buf, b)
		return nil
	})
	return n, err
}

func (c *hostConn) SetAlt(ctx context.Context, alt int) error {
	if err := c.live(); err != nil {
		return err
	}
	return c.h.dev.SetAlt(alt)
}

func (c *hostConn) Reset(ctx context.Context) error {
	if err := c.live(); err != nil {
		return err
	}
	c.h.dev.BusReset()
	// A reset re-enumerates: this Conn is done.
	c.h.mu.Lock()
	c.h.gen++
	c.h.notify()
	c.h.mu.Unlock()
	return nil
}

func (c *hostConn) Info() *dfu.DeviceInfo { return c.info }
func (c *hostConn) Close() error          { return nil }
