package dfu

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify/dfufile"
)

// element is one run of bytes that goes to one address: a DfuSe element, or the whole
// payload of a plain image. off is where its bytes start in the flasher.Image.
type element struct {
	addr uint32
	off  int64
	size int64
}

// plan is how an image goes onto this device.
type plan struct {
	dfuse    bool
	elements []element // DfuSe: in file order; plain: one element at address 0
	layout   *Layout   // DfuSe: the alternate setting's memory
	skipped  []int     // DfuSe: alternate settings of targets in the file that are not flashed
	what     string    // "DfuSe file, 2 elements", "DFU file", "raw image"
}

// planImage reads what img is (a DfuSe file, a DFU file with suffix, or raw bytes) and
// checks it against the device: the suffix's vendor and product id, the alternate
// setting, and, for DfuSe, that every element lies in writable memory of the alternate
// setting's layout.
func (d *Driver) planImage(img *flasher.Image) (*plan, error) { return planFor(d.conn.Info(), img) }

// CheckImage says whether img goes onto the device info describes, as the download would
// judge it before sending anything: the alternate setting, a DFU file's suffix ids, and for
// DfuSe that every element lies in writable memory of the alternate setting's layout. A
// run-time interface lists no DFU-mode alternate settings; check after the detach.
func CheckImage(info *DeviceInfo, img *flasher.Image) error {
	_, err := planFor(info, img)
	return err
}

func planFor(info *DeviceInfo, img *flasher.Image) (*plan, error) {
	alt, ok := info.Alt(img.Slot)
	if !ok {
		return nil, fmt.Errorf("dfu: image %s goes to alternate setting %d, which %s does not have (it has %s); check the bundle's dfu_alt hint", img.Name, img.Slot, info, altList(info))
	}
	p := &plan{dfuse: info.DfuSe()}
	var f *dfufile.File
	if dfufile.HasSuffix(img.Data, img.Size) {
		var err error
		f, err = dfufile.Parse(img.Data, img.Size)
		if err != nil {
			return nil, fmt.Errorf("dfu: image %s: %w; the bundle's image is broken, ask the release team for a new one", img.Name, err)
		}
		if err := matchSuffix(info, f.Suffix, img.Name); err != nil {
			return nil, err
		}
	}
	switch {
	case f != nil && f.DfuSe != nil:
		if !p.dfuse {
			return nil, fmt.Errorf("dfu: image %s is a DfuSe file, but %s speaks plain %s without addressing; use a plain DFU image for this device", img.Name, info, VersionString(info.Functional.Version))
		}
		p.what = "DfuSe file"
		for _, t := range f.DfuSe.Targets {
			if int(t.Alt) != img.Slot {
				p.skipped = append(p.skipped, int(t.Alt))
				continue
			}
			for _, e := range t.Elements {
				p.elements = append(p.elements, element{addr: e.Address, off: e.Offset, size: int64(e.Size)})
			}
		}
		if len(p.elements) == 0 {
			return nil, fmt.Errorf("dfu: image %s has no DfuSe target for alternate setting %d (its targets are for %v); check the bundle's dfu_alt hint", img.Name, img.Slot, p.skipped)
		}
	case p.dfuse:
		if img.Address == nil {
			return nil, fmt.Errorf("dfu: image %s is a raw image for DfuSe device %s, and the bundle gives no address for it; ask the release team for a DfuSe file or an address hint", img.Name, info)
		}
		if *img.Address > 0xffffffff {
			return nil, fmt.Errorf("dfu: image %s: address 0x%x does not fit DfuSe's 32 bits", img.Name, *img.Address)
		}
		n := img.Size
		p.what = "raw image"
		if f != nil {
			n, p.what = f.PayloadSize, "DFU file"
		}
		p.elements = []element{{addr: uint32(*img.Address), off: 0, size: n}}
	default:
		n := img.Size
		p.what = "raw image"
		if f != nil {
			n, p.what = f.PayloadSize, "DFU file"
		}
		p.elements = []element{{off: 0, size: n}}
	}
	if !p.dfuse {
		return p, nil
	}
	if alt.Layout == nil {
		why := "its name " + quote(alt.Name) + " is not a DfuSe memory layout"
		if alt.LayoutErr != "" {
			why = alt.LayoutErr
		}
		return nil, fmt.Errorf("dfu: alternate setting %d of %s has no memory layout (%s); fieldflash cannot tell which pages to erase", img.Slot, info, why)
	}
	p.layout = alt.Layout
	for _, e := range p.elements {
		if e.size == 0 {
			continue
		}
		if uint64(e.addr)+uint64(e.size) > 1<<32 {
			return nil, fmt.Errorf("dfu: image %s: element at 0x%08x of %d bytes runs past 4 GiB", img.Name, e.addr, e.size)
		}
		secs, err := p.layout.Covering(e.addr, uint32(e.size))
		if err != nil {
			return nil, fmt.Errorf("dfu: image %s: element at 0x%08x (%d bytes): %v (%s); check the bundle's address hint against the device", img.Name, e.addr, e.size, err, p.layout)
		}
		for _, s := range secs {
			if s.Type&Writable == 0 {
				return nil, fmt.Errorf("dfu: image %s: element at 0x%08x covers the sector at 0x%08x, which %q marks %s (not writable); check the bundle's address hint", img.Name, e.addr, s.Start, p.layout.Name, s.Type)
			}
		}
	}
	return p, nil
}

func quote(s string) string { return fmt.Sprintf("%q", Printable(s)) }

func altList(info *DeviceInfo) string {
	s := ""
	for i, a := range info.Alts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d", a.Setting)
		if a.Name != "" {
			s += " " + quote(a.Name)
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// matchSuffix checks the DFU suffix's ids against the device (0xffff matches any, DFU 1.1
// appendix B). A device detached from its application may have other ids in DFU mode;
// either pair matches.
func matchSuffix(info *DeviceInfo, s dfufile.Suffix, name string) error {
	okV := func(v uint16) bool { return s.IDVendor == 0xffff || s.IDVendor == v }
	okP := func(p uint16) bool { return s.IDProduct == 0xffff || s.IDProduct == p }
	if okV(info.VendorID) && okP(info.ProductID) {
		return nil
	}
	if info.RuntimeVendorID != 0 && okV(info.RuntimeVendorID) && okP(info.RuntimeProductID) {
		return nil
	}
	return fmt.Errorf("dfu: image %s is a DFU file for USB %04x:%04x (its suffix), but the device is %s; connect the device the bundle is for", name, s.IDVendor, s.IDProduct, info)
}

// page is one flash page the image touches, with the first image byte that lies in it.
type page struct {
	sector  Sector
	firstOf int64 // smallest image offset of a byte in this page
}

// pages lists the pages the image's bytes from offset from on touch, in address order,
// each once.
func (p *plan) pages(from int64) []page {
	seen := map[uint32]int{}
	var out []page
	for _, e := range p.elements {
		if e.size == 0 || e.off+e.size <= from {
			continue
		}
		start := max(from, e.off)
		secs, _ := p.layout.Covering(e.addr+uint32(start-e.off), uint32(e.off+e.size-start))
		for _, s := range secs {
			first := e.off + int64(max(s.Start, e.addr)-e.addr)
			if i, ok := seen[s.Start]; ok {
				out[i].firstOf = min(out[i].firstOf, first)
				continue
			}
			seen[s.Start] = len(out)
			out = append(out, page{sector: s, firstOf: first})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sector.Start < out[j].sector.Start })
	return out
}

// alignFrom moves a resume point back to the first image byte of its page: a page is
// erased whole, so every image byte in it is written again.
func (p *plan) alignFrom(from int64) int64 {
	if !p.dfuse || from <= 0 {
		return max(from, 0)
	}
	for _, e := range p.elements {
		if from >= e.off && from < e.off+e.size {
			s, ok := p.layout.Sector(e.addr + uint32(from-e.off))
			if !ok {
				return from
			}
			best := from
			for _, pg := range p.pages(0) {
				if pg.sector.Start == s.Start {
					best = min(best, pg.firstOf)
				}
			}
			return best
		}
	}
	return from
}

// end is one past the last image byte a download sends.
func (p *plan) end() int64 {
	var n int64
	for _, e := range p.elements {
		n = max(n, e.off+e.size)
	}
	return n
}

// readFull reads exactly len(b) bytes of img at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
