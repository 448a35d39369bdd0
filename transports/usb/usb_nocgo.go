//go:build !cgo || nolibusb

package usb

import (
	"context"
	"time"
)

const available = false

// Device is an open USB device. Without cgo there are none.
type Device struct{}

// List returns ErrNeedsFullBuild without cgo.
func List() ([]Desc, error) { return nil, ErrNeedsFullBuild }

// Open returns ErrNeedsFullBuild without cgo.
func Open(match func(Desc) bool) (*Device, error) { return nil, ErrNeedsFullBuild }

func (d *Device) Desc() Desc { return Desc{} }
func (d *Device) ConfigDescriptor(ctx context.Context, index int) ([]byte, error) {
	return nil, ErrNeedsFullBuild
}
func (d *Device) String(ctx context.Context, index uint8) (string, error) {
	return "", ErrNeedsFullBuild
}
func (d *Device) Strings(ctx context.Context) (manufacturer, product, serial string) { return }
func (d *Device) Claim(config, iface, alt int) error                                 { return ErrNeedsFullBuild }
func (d *Device) Control(ctx context.Context, rType, req uint8, val, idx uint16, data []byte) (int, error) {
	return 0, ErrNeedsFullBuild
}
func (d *Device) Reset() error { return ErrNeedsFullBuild }
func (d *Device) Close() error { return nil }

var _ = time.Second
