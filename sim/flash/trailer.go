package flash

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// The image trailer at the end of each slot, as MCUboot lays it out with max_align 8
// (the layout imgtool's --pad writes): boot magic in the last 16 bytes, then image_ok,
// copy_done and swap_info 8 bytes apart below it.
var bootMagic = []byte{0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80}

const (
	flagSet      = 0x01
	trailerBytes = 16 + 4*8
)

// Trailer is a slot's image trailer as MCUboot reads it.
type Trailer struct {
	Magic    bool // the boot magic is written
	ImageOK  bool
	CopyDone bool
}

func (f *Flash) trailerLocked(slot int) Trailer {
	end := f.layout.slotOff(slot) + f.layout.SlotSize
	b := f.mem[end-trailerBytes : end]
	return Trailer{
		Magic:    bytes.Equal(b[trailerBytes-16:], bootMagic),
		ImageOK:  b[trailerBytes-24] == flagSet,
		CopyDone: b[trailerBytes-32] == flagSet,
	}
}

// Trailer returns a slot's trailer.
func (f *Flash) Trailer(slot int) Trailer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trailerLocked(slot)
}

// writeTrailer erases the slot's trailer sector and writes t into it. Caller holds mu.
func (f *Flash) writeTrailer(slot int, t Trailer) error {
	l := f.layout
	sector := l.slotOff(slot) + l.SlotSize - l.SectorSize
	if err := f.erase(sector, l.SectorSize); err != nil {
		return err
	}
	if !t.Magic {
		return nil
	}
	return f.programTrailer(slot, t)
}

// programTrailer programs t's set fields over the trailer as it is. Caller holds mu.
func (f *Flash) programTrailer(slot int, t Trailer) error {
	end := f.layout.slotOff(slot) + f.layout.SlotSize
	b := bytes.Repeat([]byte{0xff}, trailerBytes)
	copy(b, f.mem[end-trailerBytes:end])
	if t.CopyDone {
		b[trailerBytes-32] = flagSet
	}
	if t.ImageOK {
		b[trailerBytes-24] = flagSet
	}
	if t.Magic {
		copy(b[trailerBytes-16:], bootMagic)
	}
	return f.store(end-trailerBytes, b)
}

// SwapType is what the next boot will do, read from the trailers as MCUboot does.
type SwapType int

// Swap types, named as MCUboot names them.
const (
	SwapNone   SwapType = iota
	SwapTest            // secondary marked for one trial boot
	SwapPerm            // secondary marked to become permanent
	SwapRevert          // primary was tested and not confirmed: go back
)

func (s SwapType) String() string {
	return [...]string{"none", "test", "perm", "revert"}[s]
}

func (f *Flash) swapTypeLocked() SwapType {
	p, s := f.trailerLocked(Primary), f.trailerLocked(Secondary)
	switch {
	case s.Magic && s.ImageOK:
		return SwapPerm
	case s.Magic:
		return SwapTest
	case p.Magic && p.CopyDone && !p.ImageOK:
		return SwapRevert
	}
	return SwapNone
}

// SwapType returns what the next boot will do.
func (f *Flash) SwapType() SwapType {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.swapTypeLocked()
}

// RequestSwap marks the secondary slot for the next boot: one trial boot (permanent false)
// or for good. It is what MCUmgr's image state write asks of the bootloader.
func (f *Flash) RequestSwap(permanent bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writeTrailer(Secondary, Trailer{Magic: true, ImageOK: permanent})
}

// ConfirmPrimary sets image_ok on the running image so the next boot keeps it. A primary
// without boot magic (flashed in the factory or by serial recovery) is already permanent.
// After a power cut it fails even when there is nothing to write: a device without power
// confirms nothing.
func (f *Flash) ConfirmPrimary() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return ErrPowerCut
	}
	t := f.trailerLocked(Primary)
	if !t.Magic || t.ImageOK {
		return nil
	}
	return f.programTrailer(Primary, Trailer{Magic: true, ImageOK: true})
}

// The security counter lives in its own area as a log of 16-byte records {value u32,
// zero[8], crc32}; the highest valid value wins, so a torn record only loses its own
// update.

// SecurityCounter returns the device's security counter.
func (f *Flash) SecurityCounter() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, _ := f.counterLocked()
	return v
}

func (f *Flash) counterLocked() (value uint32, next int64) {
	base := f.layout.counterOff()
	next = -1
	for i := int64(0); i+recordSize <= counterArea; i += recordSize {
		r := f.mem[base+i : base+i+recordSize]
		if bytes.Count(r, []byte{0xff}) == recordSize {
			if next < 0 {
				next = base + i
			}
			continue
		}
		if binary.LittleEndian.Uint32(r[12:]) == crc32.ChecksumIEEE(r[:12]) {
			value = max(value, binary.LittleEndian.Uint32(r))
		}
	}
	return value, next
}

func (f *Flash) raiseCounterLocked(v uint32) error {
	cur, next := f.counterLocked()
	if v <= cur {
		return nil
	}
	base := f.layout.counterOff()
	if next < 0 { // full: compact to one record
		if err := f.erase(base, counterArea); err != nil {
			return err
		}
		next = base
	}
	r := make([]byte, recordSize)
	binary.LittleEndian.PutUint32(r, v)
	binary.LittleEndian.PutUint32(r[12:], crc32.ChecksumIEEE(r[:12]))
	return f.store(next, r)
}
