package dfu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify/dfufile"
)

// infoConn only describes a device: planImage reads the descriptors, never the bus.
type infoConn struct{ info *DeviceInfo }

func (c infoConn) ControlOut(context.Context, uint8, uint16, []byte) error { return ErrGone }
func (c infoConn) ControlIn(context.Context, uint8, uint16, []byte) (int, error) {
	return 0, ErrGone
}
func (c infoConn) SetAlt(context.Context, int) error { return ErrGone }
func (c infoConn) Reset(context.Context) error       { return ErrGone }
func (c infoConn) Info() *DeviceInfo                 { return c.info }
func (c infoConn) Close() error                      { return nil }

func stm32Info() *DeviceInfo {
	l, _ := ParseLayout("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg")
	o, _ := ParseLayout("@Option Bytes  /0x1FFFC000/01*016 e")
	return &DeviceInfo{VendorID: 0x0483, ProductID: 0xdf11, Protocol: ProtocolDFUMode,
		Functional: Functional{Attributes: AttrCanDnload | AttrCanUpload, TransferSize: 2048, Version: VersionDfuSe},
		Alts:       []Alt{{Setting: 0, Name: l.Name, Layout: l}, {Setting: 1, Name: o.Name, Layout: o}}}
}

// FuzzDfuSePlan feeds arbitrary files to the driver's reading of DfuSe images against a
// device's memory layout: it must refuse or plan pages inside the layout, never panic.
func FuzzDfuSePlan(f *testing.F) {
	two, _ := dfufile.BuildDfuSe([]dfufile.TargetImage{{Alt: 0, Blocks: []dfufile.Block{{Address: 0x08000000, Data: make([]byte, 5000)}, {Address: 0x08010000, Data: make([]byte, 300)}}},
		{Alt: 1, Blocks: []dfufile.Block{{Address: 0x1fffc000, Data: make([]byte, 16)}}}}, dfufile.Suffix{IDVendor: 0x0483, IDProduct: 0xdf11})
	f.Add(two, 0)
	f.Add(two, 1)
	f.Add(dfufile.AppendSuffix(make([]byte, 100), dfufile.Suffix{IDVendor: 0xffff, IDProduct: 0xffff}), 0)
	f.Fuzz(func(t *testing.T, b []byte, alt int) {
		d := New(infoConn{stm32Info()}, Options{})
		addr := uint64(0x08004000)
		img := &flasher.Image{Name: "fuzz", Size: int64(len(b)), SHA256: sha256.Sum256(b), Slot: alt, Address: &addr, Data: bytes.NewReader(b)}
		p, err := d.planImage(img)
		if err != nil {
			return
		}
		for _, pg := range p.pages(0) {
			if _, ok := p.layout.Sector(pg.sector.Start); !ok {
				t.Fatalf("page 0x%08x outside the layout", pg.sector.Start)
			}
		}
		for _, e := range p.elements {
			if e.off < 0 || e.off+e.size > img.Size {
				t.Fatalf("element %+v outside the %d-byte image", e, img.Size)
			}
		}
		_ = p.alignFrom(int64(len(b) / 2))
	})
}
