// Package dfufile reads and writes USB DFU files: a firmware image followed by the DFU 1.1
// suffix (the last 16 bytes: device, product, vendor, bcdDFU, "UFD", length, CRC), and
// ST's DfuSe variant (UM0391), whose body is a "DfuSe" prefix, target prefixes per
// alternate setting, and elements (address, size, data).
//
// The layout follows what dfu-util 0.11's dfu-suffix and dfuse-pack write and check. Parse
// reads at most the fixed-size prefixes and never the element data, except once, streaming,
// for the CRC; it checks every declared size against the file before following it.
package dfufile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Sizes and values of the fixed parts.
const (
	SuffixLen       = 16
	BcdDFU          = 0x0100 // plain DFU 1.0/1.1 file
	BcdDfuSe        = 0x011a // DfuSe file
	prefixLen       = 11
	targetPrefixLen = 274
	targetNameLen   = 255
	elementHdrLen   = 8
)

// Errors a caller may match with errors.Is. Every error from Parse wraps one.
var (
	ErrNoSuffix  = errors.New("no DFU suffix")
	ErrCRC       = errors.New("DFU suffix CRC does not match")
	ErrFormat    = errors.New("not a well-formed DFU file")
	ErrTruncated = errors.New("DFU file is truncated")
)

// Suffix is the DFU file suffix.
type Suffix struct {
	BcdDevice uint16
	IDProduct uint16
	IDVendor  uint16
	BcdDFU    uint16
	Length    uint8  // bLength, 16 for DFU 1.1
	CRC       uint32 // dwCRC as stored (Parse has checked it)
}

// File is what Parse read of a DFU file.
type File struct {
	Size   int64
	Suffix Suffix
	// PayloadSize is the number of bytes before the suffix: the firmware of a plain DFU
	// file, or the whole DfuSe image (prefix, targets, elements).
	PayloadSize int64
	// DfuSe is set for DfuSe files (bcdDFU 0x011a).
	DfuSe *DfuSe
}

// DfuSe is the body of a DfuSe file.
type DfuSe struct {
	Version   uint8  // bVersion, 1
	ImageSize uint32 // DFUImageSize as stored
	Targets   []Target
}

// Target is one target prefix: the elements for one alternate setting.
type Target struct {
	Alt      uint8
	Named    bool
	Name     string
	Offset   int64  // file offset of the "Target" prefix
	Size     uint32 // dwTargetSize: all elements with their 8-byte headers
	Elements []Element
}

// Element is one block of data for one address.
type Element struct {
	Address uint32
	Size    uint32
	Offset  int64 // file offset of the element's data (after its 8-byte header)
}

// Reader returns the element's data in r.
func (e Element) Reader(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, e.Offset, int64(e.Size))
}

// Payload returns the bytes before the suffix: what a plain DFU device is sent.
func (f *File) Payload(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, 0, f.PayloadSize)
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrFormat)
}

func readAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d bytes at 0x%x: %w", len(buf), off, err)
}

// crcOf is the DFU suffix CRC of the first n bytes of r: CRC-32 (IEEE, reflected, initial
// 0xffffffff) without the final XOR, computed streaming.
func crcOf(r io.ReaderAt, n int64) (uint32, error) {
	h := crc32.NewIEEE()
	got, err := io.Copy(h, io.NewSectionReader(r, 0, n))
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("only %d of %d bytes could be read for the CRC: %w", got, n, ErrTruncated)
	}
	return ^h.Sum32(), nil
}

// readSuffix reads the last 16 bytes; it does not check the CRC.
func readSuffix(r io.ReaderAt, size int64) (Suffix, error) {
	if size < SuffixLen {
		return Suffix{}, fmt.Errorf("file of %d bytes is shorter than a %d-byte DFU suffix: %w", size, SuffixLen, ErrNoSuffix)
	}
	var b [SuffixLen]byte
	if err := readAt(r, b[:], size-SuffixLen); err != nil {
		return Suffix{}, err
	}
	if !bytes.Equal(b[8:11], []byte("UFD")) {
		return Suffix{}, fmt.Errorf("last 16 bytes do not carry the \"UFD\" signature (found % x): %w", b[8:11], ErrNoSuffix)
	}
	le := binary.LittleEndian
	return Suffix{
		BcdDevice: le.Uint16(b[0:]),
		IDProduct: le.Uint16(b[2:]),
		IDVendor:  le.Uint16(b[4:]),
		BcdDFU:    le.Uint16(b[6:]),
		Length:    b[11],
		CRC:       le.Uint32(b[12:]),
	}, nil
}

// HasSuffix says whether the file in r ends with a DFU suffix whose CRC matches: the test
// for "this payload is a DFU file" when nothing else says so.
func HasSuffix(r io.ReaderAt, size int64) bool {
	s, err := readSuffix(r, size)
	if err != nil || s.Length < SuffixLen || int64(s.Length) > size {
		return false
	}
	crc, err := crcOf(r, size-4)
	return err == nil && crc == s.CRC
}

// Parse reads the DFU file in r, which holds size bytes: the suffix and its CRC, and, for
// DfuSe files, the prefix, every target and every element, which must account for every
// byte before the suffix.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	s, err := readSuffix(r, size)
	if err != nil {
		return nil, err
	}
	// dfu-util accepts a suffix longer than 16 bytes (the extra bytes come first); DFU 1.1
	// itself writes 16.
	if s.Length < SuffixLen || int64(s.Length) > size {
		return nil, formatErr("suffix bLength %d: expected at least %d and at most the file's %d bytes", s.Length, SuffixLen, size)
	}
	crc, err := crcOf(r, size-4)
	if err != nil {
		return nil, err
	}
	if crc != s.CRC {
		return nil, fmt.Errorf("suffix says dwCRC 0x%08x, the file's bytes give 0x%08x: %w", s.CRC, crc, ErrCRC)
	}
	f := &File{Size: size, Suffix: s, PayloadSize: size - int64(s.Length)}
	switch s.BcdDFU {
	case BcdDFU:
		if isDfuSe(r, f.PayloadSize) {
			return nil, formatErr("file starts with a DfuSe prefix but its suffix says bcdDFU 0x%04x, not 0x%04x", s.BcdDFU, BcdDfuSe)
		}
	case BcdDfuSe:
		d, err := parseDfuSe(r, f.PayloadSize, size)
		if err != nil {
			return nil, err
		}
		f.DfuSe = d
	default:
		return nil, formatErr("suffix bcdDFU 0x%04x: expected 0x%04x (DFU) or 0x%04x (DfuSe)", s.BcdDFU, BcdDFU, BcdDfuSe)
	}
	return f, nil
}

func isDfuSe(r io.ReaderAt, body int64) bool {
	if body < prefixLen {
		return false
	}
	var b [5]byte
	return readAt(r, b[:], 0) == nil && string(b[:]) == "DfuSe"
}

func parseDfuSe(r io.ReaderAt, body, size int64) (*DfuSe, error) {
	if body < prefixLen {
		return nil, fmt.Errorf("suffix says DfuSe but only %d bytes precede it, fewer than the %d-byte prefix: %w", body, prefixLen, ErrTruncated)
	}
	var p [prefixLen]byte
	if err := readAt(r, p[:], 0); err != nil {
		return nil, err
	}
	if string(p[:5]) != "DfuSe" {
		return nil, formatErr("suffix says DfuSe (bcdDFU 0x011a) but the file starts with %q, not \"DfuSe\"", p[:5])
	}
	le := binary.LittleEndian
	d := &DfuSe{Version: p[5], ImageSize: le.Uint32(p[6:])}
	if d.Version != 1 {
		return nil, formatErr("DfuSe prefix bVersion %d, expected 1", d.Version)
	}
	// UM0391 calls DFUImageSize the total file length; dfuse-pack counts the suffix in it,
	// other writers leave it out. Either is accepted, nothing else.
	if int64(d.ImageSize) != size && int64(d.ImageSize) != body {
		return nil, formatErr("DfuSe DFUImageSize %d, but the file has %d bytes (%d before the suffix)", d.ImageSize, size, body)
	}
	nTargets := int(p[10])
	off := int64(prefixLen)
	for i := range nTargets {
		if off+targetPrefixLen > body {
			return nil, fmt.Errorf("DfuSe target %d prefix at 0x%x runs past 0x%x, where the suffix starts: %w", i, off, body, ErrTruncated)
		}
		var tp [targetPrefixLen]byte
		if err := readAt(r, tp[:], off); err != nil {
			return nil, err
		}
		if string(tp[:6]) != "Target" {
			return nil, formatErr("DfuSe target %d at 0x%x starts with %q, not \"Target\"", i, off, tp[:6])
		}
		t := Target{
			Alt:    tp[6],
			Named:  le.Uint32(tp[7:]) != 0,
			Offset: off,
			Size:   le.Uint32(tp[11+targetNameLen:]),
		}
		if t.Named {
			name := tp[11 : 11+targetNameLen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			t.Name = string(name)
		}
		nElements := le.Uint32(tp[15+targetNameLen:])
		off += targetPrefixLen
		end := off + int64(t.Size)
		if end > body {
			return nil, fmt.Errorf("DfuSe target %d (alt %d) declares %d bytes ending at 0x%x, past 0x%x where the suffix starts: %w", i, t.Alt, t.Size, end, body, ErrTruncated)
		}
		// nElements is not trusted for allocation: each element takes at least 8 bytes of
		// the target, which bounds the loop by the file.
		for j := uint32(0); j < nElements; j++ {
			if off+elementHdrLen > end {
				return nil, formatErr("DfuSe target %d (alt %d): element %d header at 0x%x runs past the target's end at 0x%x (dwTargetSize %d, dwNbElements %d)",
					i, t.Alt, j, off, end, t.Size, nElements)
			}
			var eh [elementHdrLen]byte
			if err := readAt(r, eh[:], off); err != nil {
				return nil, err
			}
			e := Element{Address: le.Uint32(eh[0:]), Size: le.Uint32(eh[4:]), Offset: off + elementHdrLen}
			if e.Offset+int64(e.Size) > end {
				return nil, formatErr("DfuSe target %d (alt %d): element %d at 0x%08x declares %d bytes ending at 0x%x, past the target's end at 0x%x",
					i, t.Alt, j, e.Address, e.Size, e.Offset+int64(e.Size), end)
			}
			t.Elements = append(t.Elements, e)
			off = e.Offset + int64(e.Size)
		}
		if off != end {
			return nil, formatErr("DfuSe target %d (alt %d): its %d elements end at 0x%x, but dwTargetSize %d says 0x%x", i, t.Alt, nElements, off, t.Size, end)
		}
		d.Targets = append(d.Targets, t)
	}
	if off != body {
		return nil, formatErr("DfuSe: %d bytes between the last target (ends 0x%x) and the suffix (0x%x) belong to no target", body-off, off, body)
	}
	return d, nil
}
