// Package flash is a virtual device's flash with MCUboot's semantics: a bootloader, a
// primary and a secondary image slot of fixed size, each ending in an image trailer
// (boot magic, image_ok, copy_done), a scratch sector and a swap-status log, and a
// monotonic security counter. Boot does what MCUboot's swap-using-scratch does: it reads
// the trailers, checks the candidate image (header, hash, security counter), swaps the
// slots sector by sector, and reverts an image that was tested but not confirmed on the
// next boot.
//
// Every erase and program goes to a file (and is fsynced), so a device outlives the
// process that serves it. CutPowerAfter stops the flash in the middle of any write; a
// device reopened from that file must still boot, which is what the tests check at every
// step of a swap.
package flash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// Layout is the geometry of the flash. SlotSize is a multiple of SectorSize; the last
// sector of each slot is reserved for the image trailer, so an image's TLV area must end
// before it.
type Layout struct {
	SectorSize     int64
	SlotSize       int64
	BootloaderSize int64
}

// DefaultLayout has 4 KiB sectors and 256 KiB slots, like the upstream test images'
// --slot-size 0x40000.
var DefaultLayout = Layout{SectorSize: 4096, SlotSize: 0x40000, BootloaderSize: 0x10000}

// ErrPowerCut is returned by every operation after the power was cut (CutPowerAfter).
var ErrPowerCut = errors.New("flash: power cut")

// The file: a metadata page, then bootloader, primary, secondary, scratch, status log and
// security counter log.
const (
	metaSize    = 4096
	fileMagic   = "FFSIMFL1"
	recordSize  = 16
	counterArea = 4096
)

// Options tune a Flash.
type Options struct {
	// NoSync skips fsync after each write. fsync guards against the host crashing; a
	// test that models only the device losing power (the file survives) may skip it.
	NoSync bool
}

// Flash is one device's flash, backed by a file.
type Flash struct {
	mu     sync.Mutex
	file   *os.File
	mem    []byte
	layout Layout
	opt    Options
	budget int64 // bytes that may still be written before the power cut; <0 = no cut
	dead   bool

	written int64   // bytes erased or programmed since Open
	opEnds  []int64 // written at the end of each operation, for tests that cut between them
}

// Slot numbers.
const (
	Primary   = 0
	Secondary = 1
)

func (l Layout) check() error {
	if l.SectorSize < 64 || l.SlotSize < 2*l.SectorSize || l.SlotSize%l.SectorSize != 0 || l.BootloaderSize < 0 {
		return fmt.Errorf("flash layout %+v: slot size must be a multiple of the sector size (at least 64 bytes) and hold at least two sectors", l)
	}
	return nil
}

func (l Layout) usableSectors() int64 { return l.SlotSize/l.SectorSize - 1 }
func (l Layout) bootloaderOff() int64 { return metaSize }
func (l Layout) slotOff(slot int) int64 {
	return metaSize + l.BootloaderSize + int64(slot)*l.SlotSize
}
func (l Layout) scratchOff() int64 { return l.slotOff(2) }
func (l Layout) logOff() int64     { return l.scratchOff() + l.SectorSize }
func (l Layout) logSize() int64 {
	n := (6*l.usableSectors() + 16) * recordSize // room for records torn by power cuts
	return (n + l.SectorSize - 1) / l.SectorSize * l.SectorSize
}
func (l Layout) counterOff() int64 { return l.logOff() + l.logSize() }
func (l Layout) total() int64      { return l.counterOff() + counterArea }

// Create makes a new erased flash in path (which must not exist), with bootloader written
// into the bootloader area.
func Create(path string, l Layout, bootloader []byte, opt Options) (*Flash, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if int64(len(bootloader)) > l.BootloaderSize {
		return nil, fmt.Errorf("flash %s: bootloader of %d bytes does not fit its %d-byte area", path, len(bootloader), l.BootloaderSize)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("flash %s: %w; pick a new file or open the existing one", path, err)
	}
	mem := bytes.Repeat([]byte{0xff}, int(l.total()))
	copy(mem, fileMagic)
	binary.LittleEndian.PutUint64(mem[8:], uint64(l.SectorSize))
	binary.LittleEndian.PutUint64(mem[16:], uint64(l.SlotSize))
	binary.LittleEndian.PutUint64(mem[24:], uint64(l.BootloaderSize))
	binary.LittleEndian.PutUint32(mem[32:], crc32.ChecksumIEEE(mem[:32]))
	copy(mem[l.bootloaderOff():], bootloader)
	if _, err := f.WriteAt(mem, 0); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("flash %s: %w", path, err)
	}
	return &Flash{file: f, mem: mem, layout: l, opt: opt, budget: -1}, nil
}

// Open opens a flash file made by Create, in whatever state a power cut left it.
func Open(path string, opt Options) (*Flash, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("flash %s: %w", path, err)
	}
	mem, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flash %s: %w", path, err)
	}
	bad := func(why string) (*Flash, error) {
		f.Close()
		return nil, fmt.Errorf("flash %s: %s; it is not a fieldflash simulator flash file, create a new one", path, why)
	}
	if len(mem) < metaSize || string(mem[:8]) != fileMagic || binary.LittleEndian.Uint32(mem[32:]) != crc32.ChecksumIEEE(mem[:32]) {
		return bad("bad metadata page")
	}
	l := Layout{
		SectorSize:     int64(binary.LittleEndian.Uint64(mem[8:])),
		SlotSize:       int64(binary.LittleEndian.Uint64(mem[16:])),
		BootloaderSize: int64(binary.LittleEndian.Uint64(mem[24:])),
	}
	if l.check() != nil || l.total() != int64(len(mem)) {
		return bad("layout does not match the file size")
	}
	return &Flash{file: f, mem: mem, layout: l, opt: opt, budget: -1}, nil
}

// Layout returns the flash geometry.
func (f *Flash) Layout() Layout { return f.layout }

// Close closes the file. After a power cut it is the only operation left.
func (f *Flash) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file.Close()
}

// CutPowerAfter lets n more bytes be erased or programmed, then stops the flash mid-write:
// the write in progress is applied up to its n-th byte and everything after fails with
// ErrPowerCut. n < 0 removes the cut.
func (f *Flash) CutPowerAfter(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.budget = n
}

// Written returns how many bytes were erased or programmed since Open (wear, and the scale
// for CutPowerAfter).
func (f *Flash) Written() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

// Bootloader returns the bootloader area.
func (f *Flash) Bootloader() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.layout
	b := bytes.TrimRight(f.mem[l.bootloaderOff():l.bootloaderOff()+l.BootloaderSize], "\xff")
	return bytes.Clone(b)
}

// store writes data at the file offset off (an erase is data of 0xff), honouring the power
// cut. Caller holds mu.
func (f *Flash) store(off int64, data []byte) error {
	if f.dead {
		return ErrPowerCut
	}
	n := int64(len(data))
	cut := false
	if f.budget >= 0 && n > f.budget {
		n, cut = f.budget, true
	}
	if f.budget >= 0 {
		f.budget -= n
	}
	copy(f.mem[off:], data[:n])
	f.written += n
	if !cut {
		f.opEnds = append(f.opEnds, f.written)
	}
	if n > 0 {
		if _, err := f.file.WriteAt(data[:n], off); err != nil {
			f.dead = true
			return fmt.Errorf("flash: %w", err)
		}
		if !f.opt.NoSync {
			if err := f.file.Sync(); err != nil {
				f.dead = true
				return fmt.Errorf("flash: %w", err)
			}
		}
	}
	if cut {
		f.dead = true
		return ErrPowerCut
	}
	return nil
}

func (f *Flash) erase(off, n int64) error {
	return f.store(off, bytes.Repeat([]byte{0xff}, int(n)))
}

func (f *Flash) checkRange(slot int, off, n int64) error {
	if slot != Primary && slot != Secondary {
		return fmt.Errorf("flash: no slot %d", slot)
	}
	if off < 0 || n < 0 || off+n > f.layout.SlotSize {
		return fmt.Errorf("flash: slot %d: range [%d, %d) outside the %d-byte slot", slot, off, off+n, f.layout.SlotSize)
	}
	return nil
}

// EraseSlot erases a whole slot, trailer included.
func (f *Flash) EraseSlot(slot int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkRange(slot, 0, 0); err != nil {
		return err
	}
	return f.erase(f.layout.slotOff(slot), f.layout.SlotSize)
}

// Program writes data into slot at off; the range must have been erased (as on NOR flash,
// programming over written bytes is the caller's mistake; the model simply overwrites).
func (f *Flash) Program(slot int, off int64, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkRange(slot, off, int64(len(data))); err != nil {
		return err
	}
	return f.store(f.layout.slotOff(slot)+off, data)
}

// Slot returns a reader of a slot's bytes as they are now.
func (f *Flash) Slot(slot int) io.ReaderAt {
	return slotReader{f: f, slot: slot}
}

type slotReader struct {
	f    *Flash
	slot int
}

func (r slotReader) ReadAt(p []byte, off int64) (int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	l := r.f.layout
	if off < 0 || off >= l.SlotSize {
		return 0, io.EOF
	}
	base := l.slotOff(r.slot)
	n := copy(p, r.f.mem[base+off:base+l.SlotSize])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
