package dfufile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// AppendSuffix returns payload followed by a 16-byte DFU suffix with s's device, product,
// vendor and bcdDFU (0 means 0x0100) and the CRC over everything before it, as
// `dfu-suffix -v -p -d -a` writes it. s.Length and s.CRC are ignored.
func AppendSuffix(payload []byte, s Suffix) []byte {
	if s.BcdDFU == 0 {
		s.BcdDFU = BcdDFU
	}
	out := make([]byte, len(payload), len(payload)+SuffixLen)
	copy(out, payload)
	le := binary.LittleEndian
	out = le.AppendUint16(out, s.BcdDevice)
	out = le.AppendUint16(out, s.IDProduct)
	out = le.AppendUint16(out, s.IDVendor)
	out = le.AppendUint16(out, s.BcdDFU)
	out = append(out, 'U', 'F', 'D', SuffixLen)
	return le.AppendUint32(out, ^crc32.ChecksumIEEE(out))
}

// TargetImage is what BuildDfuSe writes for one alternate setting.
type TargetImage struct {
	Alt uint8
	// Name is szTargetName; "" writes dfuse-pack's "ST...".
	Name   string
	Blocks []Block
}

// Block is one element: data to be written at Address.
type Block struct {
	Address uint32
	Data    []byte
}

// BuildDfuSe writes a DfuSe file as dfuse-pack does: prefix (DFUImageSize counting the
// suffix), one named target prefix per TargetImage in order, its elements, and a suffix
// with bcdDFU 0x011a. s.BcdDFU, s.Length and s.CRC are ignored; s.BcdDevice is written
// as given (dfuse-pack always writes 0).
func BuildDfuSe(targets []TargetImage, s Suffix) ([]byte, error) {
	if len(targets) > math.MaxUint8 {
		return nil, fmt.Errorf("%d targets: a DfuSe file holds at most 255", len(targets))
	}
	le := binary.LittleEndian
	body := []byte("DfuSe\x01\x00\x00\x00\x00")
	body = append(body, byte(len(targets)))
	for _, t := range targets {
		name := t.Name
		if name == "" {
			name = "ST..."
		}
		if len(name) >= targetNameLen {
			return nil, fmt.Errorf("target name %q: at most %d bytes", name, targetNameLen-1)
		}
		var size int64
		for _, b := range t.Blocks {
			size += elementHdrLen + int64(len(b.Data))
		}
		if size > math.MaxUint32 {
			return nil, fmt.Errorf("target alt %d: %d bytes do not fit dwTargetSize", t.Alt, size)
		}
		body = append(body, "Target"...)
		body = append(body, t.Alt)
		body = le.AppendUint32(body, 1)
		var nb [targetNameLen]byte
		copy(nb[:], name)
		body = append(body, nb[:]...)
		body = le.AppendUint32(body, uint32(size))
		body = le.AppendUint32(body, uint32(len(t.Blocks)))
		for _, b := range t.Blocks {
			body = le.AppendUint32(body, b.Address)
			body = le.AppendUint32(body, uint32(len(b.Data)))
			body = append(body, b.Data...)
		}
	}
	total := int64(len(body)) + SuffixLen
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("DfuSe file of %d bytes does not fit DFUImageSize", total)
	}
	le.PutUint32(body[6:], uint32(total))
	s.BcdDFU = BcdDfuSe
	return AppendSuffix(body, s), nil
}
