package dfudev

import (
	"context"
	"fmt"
	"sync"

	"github.com/fieldflash/fieldflash/flasher/dfu"
)

// Hub is a simulated USB bus with several virtual DFU devices on it, each on a port of its
// own ("9-1", "9-2", … as Linux names ports). It is a dfu.Bus: app takes it in place of
// this machine's USB (app.SetUSBBus), so the app layer, the CLI's printers and the window
// list, fit, flash and recover virtual devices through the same code as real ones. It
// stands below the USB boundary, which the lab (sim/usblab) crosses for real.
type Hub struct {
	mu    sync.Mutex
	hosts []*Host
}

// NewHub returns an empty bus.
func NewHub() *Hub { return &Hub{} }

// Plug connects dev to the next port of the hub and returns its host (for Unplug,
// UnplugAfter and Replug).
func (b *Hub) Plug(dev *Device) *Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := NewHost(dev)
	h.path = fmt.Sprintf("9-%d", len(b.hosts)+1)
	b.hosts = append(b.hosts, h)
	return h
}

func (b *Hub) present() []*Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*Host
	for _, h := range b.hosts {
		if h.Present() {
			out = append(out, h)
		}
	}
	return out
}

// Find lists the devices on the bus that match (dfu.Bus).
func (b *Hub) Find(ctx context.Context, m dfu.Match) ([]dfu.Found, error) {
	var out []dfu.Found
	for _, h := range b.present() {
		if info := h.info(); m.Matches(info) {
			out = append(out, dfu.Found{Info: info})
		}
	}
	return out, nil
}

// Open opens the first device that matches, or fails with dfu.ErrGone at once (dfu.Bus).
func (b *Hub) Open(ctx context.Context, m dfu.Match) (dfu.Conn, error) {
	for _, h := range b.present() {
		if c, ok := h.openNow(); ok && m.Matches(c.Info()) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("dfudev: no device %s on the simulated bus: %w", m, dfu.ErrGone)
}
