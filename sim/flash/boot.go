package flash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Mode is what the device runs after a boot.
type Mode string

// The two modes: the application from the primary slot, or the bootloader's serial
// recovery (no bootable image, or the user held the recovery button).
const (
	ModeApplication Mode = "application"
	ModeRecovery    Mode = "recovery"
)

// BootResult says what a boot did.
type BootResult struct {
	Mode    Mode
	Swap    SwapType // the swap this boot performed (or finished after a power cut)
	Resumed bool     // the swap was one a power cut had interrupted
	// Refused says why the candidate in the secondary slot was not swapped in, or why
	// the primary did not boot; empty when nothing was refused.
	Refused string
}

// ImageInfo is what the bootloader reads of the image in a slot.
type ImageInfo struct {
	Valid           bool // header, TLVs and hash check out and the image fits before the trailer
	Problem         string
	Version         mcuboot.Version
	SecurityCounter *uint32
	Hash            []byte
	End             int64 // one past the TLV area
}

// VersionString prints the version as Zephyr's img_mgmt does: "1.2.3", with ".build"
// when the build number is not 0.
func (i ImageInfo) VersionString() string {
	v := i.Version
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Revision)
	if v.Build != 0 {
		s += fmt.Sprintf(".%d", v.Build)
	}
	return s
}

func (f *Flash) imageLocked(slot int) ImageInfo {
	l := f.layout
	base := l.slotOff(slot)
	r := bytes.NewReader(f.mem[base : base+l.SlotSize])
	img, err := mcuboot.Parse(r, l.SlotSize)
	if err != nil {
		return ImageInfo{Problem: err.Error()}
	}
	info := ImageInfo{Version: img.Version, SecurityCounter: img.SecurityCounter, Hash: img.ImageHash, End: img.TLVEnd}
	if img.TLVEnd > l.usableSectors()*l.SectorSize {
		info.Problem = fmt.Sprintf("image ends at %d, inside the trailer sector at %d", img.TLVEnd, l.usableSectors()*l.SectorSize)
		return info
	}
	if err := img.VerifyHash(r); err != nil {
		info.Problem = err.Error()
		return info
	}
	info.Valid = true
	return info
}

// Image reads and checks the image in a slot.
func (f *Flash) Image(slot int) ImageInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.imageLocked(slot)
}

// The swap-status log: 16-byte records {magic u32, kind u8, swap u8, sector u16, step u8,
// zero[3], crc32}, appended in order into an erased area. The last valid record is where a
// swap stands. A record torn by a power cut fails its CRC and is skipped; an erased record
// ends the log. The log is erased front to back when a swap is finished, so a cut during
// that erase leaves either the finished swap's last record or nothing.
const (
	logMagic     = 0x53575053
	kindBegin    = 1
	kindStep     = 2
	kindTrailers = 3
)

type logRecord struct {
	kind   byte
	swap   SwapType
	sector uint16
	step   byte
}

func (f *Flash) readLogLocked() (last *logRecord, next int64) {
	l := f.layout
	base := l.logOff()
	for i := int64(0); i+recordSize <= l.logSize(); i += recordSize {
		r := f.mem[base+i : base+i+recordSize]
		if bytes.Count(r, []byte{0xff}) == recordSize {
			return last, base + i
		}
		if binary.LittleEndian.Uint32(r) != logMagic || binary.LittleEndian.Uint32(r[12:]) != crc32.ChecksumIEEE(r[:12]) {
			continue
		}
		last = &logRecord{kind: r[4], swap: SwapType(r[5]), sector: binary.LittleEndian.Uint16(r[6:]), step: r[8]}
	}
	return last, -1
}

func (f *Flash) appendLogLocked(rec logRecord) error {
	_, next := f.readLogLocked()
	if next < 0 {
		return errors.New("flash: swap-status log full")
	}
	r := make([]byte, recordSize)
	binary.LittleEndian.PutUint32(r, logMagic)
	r[4], r[5] = rec.kind, byte(rec.swap)
	binary.LittleEndian.PutUint16(r[6:], rec.sector)
	r[8] = rec.step
	binary.LittleEndian.PutUint32(r[12:], crc32.ChecksumIEEE(r[:12]))
	return f.store(next, r)
}

// Boot runs the bootloader: finish a swap a power cut interrupted, else start the one the
// trailers ask for (after checking the candidate), then check the primary image and decide
// the mode. recovery is the recovery button: like MCUboot, the bootloader then goes to
// serial recovery before starting any swap, but it still finishes an interrupted one
// first, since a half-swapped primary is worth nothing to recovery either (the model's
// swap log lives outside the slots, where a recovery upload would not clear it). An error
// is a power cut (or a file error): boot again.
func (f *Flash) Boot(recovery bool) (BootResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res BootResult
	if last, _ := f.readLogLocked(); last != nil {
		res.Swap, res.Resumed = last.swap, true
		if err := f.swapLocked(last); err != nil {
			return res, err
		}
	} else if st := f.swapTypeLocked(); st != SwapNone && !recovery {
		ok := true
		if st == SwapTest || st == SwapPerm {
			cand := f.imageLocked(Secondary)
			cur, _ := f.counterLocked()
			switch {
			case !cand.Valid:
				ok, res.Refused = false, "secondary image: "+cand.Problem
			case cand.SecurityCounter != nil && *cand.SecurityCounter < cur:
				ok, res.Refused = false, fmt.Sprintf("secondary image: security counter %d is below the device's %d", *cand.SecurityCounter, cur)
			case cand.SecurityCounter == nil && cur > 0:
				ok, res.Refused = false, fmt.Sprintf("secondary image: no security counter, the device's is %d", cur)
			}
		}
		if !ok {
			// MCUboot erases a candidate it will not boot, so it does not try again.
			if err := f.erase(f.layout.slotOff(Secondary), f.layout.SlotSize); err != nil {
				return res, err
			}
		} else {
			res.Swap = st
			if err := f.appendLogLocked(logRecord{kind: kindBegin, swap: st}); err != nil {
				return res, err
			}
			if err := f.swapLocked(&logRecord{kind: kindBegin, swap: st}); err != nil {
				return res, err
			}
		}
	}
	res.Mode = ModeRecovery
	if recovery {
		return res, nil
	}
	img := f.imageLocked(Primary)
	cur, _ := f.counterLocked()
	switch {
	case !img.Valid:
		res.Refused = "primary image: " + img.Problem
		return res, nil
	case img.SecurityCounter != nil && *img.SecurityCounter < cur:
		res.Refused = fmt.Sprintf("primary image: security counter %d is below the device's %d", *img.SecurityCounter, cur)
		return res, nil
	}
	// The counter follows an image only once it is permanent, so a trial boot can still
	// be reverted to the older image.
	if t := f.trailerLocked(Primary); img.SecurityCounter != nil && (!t.Magic || t.ImageOK) {
		if err := f.raiseCounterLocked(*img.SecurityCounter); err != nil {
			return res, err
		}
	}
	res.Mode = ModeApplication
	return res, nil
}

// swapLocked carries a swap forward from the last logged record: every usable sector is
// exchanged through the scratch sector in three logged steps, then the trailers are written
// for the swap type, then the log is erased. Each step only reads what no earlier step of
// the same sector has overwritten, so redoing the step after a cut gives the same result.
func (f *Flash) swapLocked(last *logRecord) error {
	l := f.layout
	n := l.usableSectors()
	sector, step := int64(0), byte(0)
	switch last.kind {
	case kindStep:
		sector, step = int64(last.sector), last.step+1
		if step == 3 {
			sector, step = sector+1, 0
		}
	case kindTrailers:
		sector = n + 1
	}
	copySector := func(dst, src int64) error {
		if err := f.erase(dst, l.SectorSize); err != nil {
			return err
		}
		return f.store(dst, bytes.Clone(f.mem[src:src+l.SectorSize]))
	}
	for ; sector < n; sector, step = sector+1, 0 {
		p := l.slotOff(Primary) + sector*l.SectorSize
		s := l.slotOff(Secondary) + sector*l.SectorSize
		for ; step < 3; step++ {
			var err error
			switch step {
			case 0:
				err = copySector(l.scratchOff(), p)
			case 1:
				err = copySector(p, s)
			case 2:
				err = copySector(s, l.scratchOff())
			}
			if err == nil {
				err = f.appendLogLocked(logRecord{kind: kindStep, swap: last.swap, sector: uint16(sector), step: step})
			}
			if err != nil {
				return err
			}
		}
	}
	if sector == n {
		primary := Trailer{Magic: true, CopyDone: true}
		switch last.swap {
		case SwapPerm:
			primary.ImageOK = true
		case SwapRevert:
			primary = Trailer{Magic: true, ImageOK: true}
		}
		if err := f.writeTrailer(Primary, primary); err != nil {
			return err
		}
		if err := f.writeTrailer(Secondary, Trailer{}); err != nil {
			return err
		}
		if err := f.appendLogLocked(logRecord{kind: kindTrailers, swap: last.swap}); err != nil {
			return err
		}
	}
	return f.erase(l.logOff(), l.logSize())
}

var _ io.ReaderAt = slotReader{}
