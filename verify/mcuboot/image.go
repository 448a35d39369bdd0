// Package mcuboot reads, checks and writes MCUboot images as the upstream imgtool lays
// them out: a 32-byte header at offset 0 (padded to hdr_size), the firmware, an optional
// protected TLV area that the image hash covers, and the TLV area that carries the hash,
// the signer's key hash and the signature.
//
// Parse reads only the header and the TLV areas (at most 2×64 KiB, whatever sizes the
// header claims) and never reads past the size it is given. VerifyHash streams the hashed
// region through SHA-256; VerifySignature picks the key the way MCUboot's bootloader does,
// by the KEYHASH or PUBKEY TLV in front of the signature, so a signature by another key
// spliced under a trusted key's hash is refused. Build writes images that imgtool 2.4.0
// would write for the same inputs, byte for byte (Ed25519 is deterministic).
package mcuboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Header magics and TLV area magics.
const (
	Magic            = 0x96f3b83d
	MagicV1          = 0x96f3b83c // the pre-1.0 header, not supported
	HeaderLen        = 32         // bytes of the header proper; hdr_size is at least this
	TLVInfoMagic     = 0x6907
	TLVProtInfoMagic = 0x6908
	tlvInfoLen       = 4
	tlvHeaderLen     = 4
)

// TLV types (bootutil/image.h).
const (
	TLVKeyHash    = 0x01
	TLVPubKey     = 0x02
	TLVSHA256     = 0x10
	TLVSHA384     = 0x11
	TLVSHA512     = 0x12
	TLVRSA2048    = 0x20
	TLVECDSA224   = 0x21
	TLVECDSASig   = 0x22 // ECDSA P-256 (and P-384) signature, ASN.1 DER
	TLVRSA3072    = 0x23
	TLVED25519    = 0x24
	TLVSigPure    = 0x25
	TLVDependency = 0x40
	TLVSecCnt     = 0x50
	TLVBootRecord = 0x60
)

// Header flags.
const (
	FlagPIC              = 0x00000001
	FlagEncryptedAES128  = 0x00000004
	FlagEncryptedAES256  = 0x00000008
	FlagNonBootable      = 0x00000010
	FlagRAMLoad          = 0x00000020
	FlagROMFixed         = 0x00000100
	flagEncryptedAnyMask = FlagEncryptedAES128 | FlagEncryptedAES256
)

// Errors a caller may match with errors.Is. Every error from this package wraps one.
var (
	ErrFormat       = errors.New("not a well-formed MCUboot image")
	ErrTruncated    = errors.New("MCUboot image is truncated")
	ErrHashMismatch = errors.New("MCUboot image hash does not match")
	ErrEncrypted    = errors.New("MCUboot image is encrypted")
	ErrNoSignature  = errors.New("MCUboot image is not signed")
	ErrOtherKey     = errors.New("MCUboot image is signed by another key")
	ErrBadSignature = errors.New("MCUboot image signature does not verify")
)

// Version is the image version of the header: major.minor.revision+build.
type Version struct {
	Major    uint8
	Minor    uint8
	Revision uint16
	Build    uint32
}

// String prints the version as imgtool does: "1.2.3+45" (the build number always shown).
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d+%d", v.Major, v.Minor, v.Revision, v.Build)
}

// Header is the 32-byte image header.
type Header struct {
	Magic          uint32
	LoadAddr       uint32
	HdrSize        uint16
	ProtectTLVSize uint16
	ImgSize        uint32
	Flags          uint32
	Version        Version
}

// TLV is one type-length-value record of a TLV area.
type TLV struct {
	Type      uint16
	Len       uint16
	Offset    int64 // file offset of the TLV's 4-byte header; the value follows it
	Protected bool  // in the protected area, so covered by the image hash
	Value     []byte
}

// Dependency is a DEPENDENCY TLV: image ImageID must be at least Version.
type Dependency struct {
	ImageID uint8
	Version Version
}

// Image is what Parse read of an MCUboot image. Nothing in it is trusted until VerifyHash
// (and, where a key is known, VerifySignature) passed.
type Image struct {
	Header Header
	Size   int64 // file size as given to Parse
	// Version is Header.Version.
	Version Version
	// SecurityCounter is the protected SEC_CNT TLV, nil when absent.
	SecurityCounter *uint32
	// ImageHash is the SHA256 TLV (or SHA384/SHA512 when the image has no SHA256 TLV).
	ImageHash []byte
	// Signed says the image carries a signature TLV (of any algorithm).
	Signed bool
	// ProtectedTLVOffset is where the protected area's info header starts, -1 when none.
	ProtectedTLVOffset int64
	// TLVOffset is where the TLV area's info header starts; TLVEnd is one past its end.
	TLVOffset    int64
	TLVEnd       int64
	TLVs         []TLV // protected first, each area in file order
	Dependencies []Dependency
}

// HashedEnd is one past the last byte the image hash covers: header, payload and the
// protected TLV area.
func (img *Image) HashedEnd() int64 {
	return int64(img.Header.HdrSize) + int64(img.Header.ImgSize) + int64(img.Header.ProtectTLVSize)
}

// PayloadOffset is where the firmware proper starts.
func (img *Image) PayloadOffset() int64 { return int64(img.Header.HdrSize) }

// Find returns the TLVs of type t, in file order.
func (img *Image) Find(t uint16) []TLV {
	var out []TLV
	for _, tlv := range img.TLVs {
		if tlv.Type == t {
			out = append(out, tlv)
		}
	}
	return out
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrFormat)
}

// readAt reads exactly len(buf) bytes at off; the caller has checked off+len(buf) <= size.
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

// Parse reads the header and both TLV areas of the image in r, which holds size bytes.
// It checks every bound against size before reading and allocates at most the two TLV
// areas (each at most 64 KiB by construction of their u16 length).
func Parse(r io.ReaderAt, size int64) (*Image, error) {
	if size < HeaderLen {
		return nil, fmt.Errorf("file has %d bytes, fewer than the %d-byte header: %w", size, HeaderLen, ErrTruncated)
	}
	var hb [HeaderLen]byte
	if err := readAt(r, hb[:], 0); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	h := Header{
		Magic:          le.Uint32(hb[0:]),
		LoadAddr:       le.Uint32(hb[4:]),
		HdrSize:        le.Uint16(hb[8:]),
		ProtectTLVSize: le.Uint16(hb[10:]),
		ImgSize:        le.Uint32(hb[12:]),
		Flags:          le.Uint32(hb[16:]),
		Version: Version{
			Major:    hb[20],
			Minor:    hb[21],
			Revision: le.Uint16(hb[22:]),
			Build:    le.Uint32(hb[24:]),
		},
	}
	switch {
	case h.Magic == MagicV1:
		return nil, formatErr("header magic 0x%08x is the obsolete v1 format, expected 0x%08x", h.Magic, uint32(Magic))
	case h.Magic != Magic:
		return nil, formatErr("header magic 0x%08x, expected 0x%08x", h.Magic, uint32(Magic))
	case h.HdrSize < HeaderLen:
		return nil, formatErr("hdr_size %d is smaller than the %d-byte header", h.HdrSize, HeaderLen)
	case h.ProtectTLVSize != 0 && h.ProtectTLVSize < tlvInfoLen:
		return nil, formatErr("protect_tlv_size %d is smaller than its %d-byte info header", h.ProtectTLVSize, tlvInfoLen)
	}
	img := &Image{Header: h, Size: size, Version: h.Version, ProtectedTLVOffset: -1}
	payloadEnd := int64(h.HdrSize) + int64(h.ImgSize)
	hashedEnd := img.HashedEnd()
	if hashedEnd > size {
		return nil, fmt.Errorf("header and payload (hdr_size 0x%x + img_size 0x%x) and protected TLVs (%d bytes) end at 0x%x, past the end of the %d-byte file: %w",
			h.HdrSize, h.ImgSize, h.ProtectTLVSize, hashedEnd, size, ErrTruncated)
	}
	if h.ProtectTLVSize != 0 {
		img.ProtectedTLVOffset = payloadEnd
		tlvs, _, err := readArea(r, payloadEnd, size, TLVProtInfoMagic, int(h.ProtectTLVSize))
		if err != nil {
			return nil, err
		}
		img.TLVs = append(img.TLVs, tlvs...)
	}
	img.TLVOffset = hashedEnd
	tlvs, end, err := readArea(r, hashedEnd, size, TLVInfoMagic, -1)
	if err != nil {
		return nil, err
	}
	img.TLVs = append(img.TLVs, tlvs...)
	img.TLVEnd = end
	if err := img.interpret(); err != nil {
		return nil, err
	}
	return img, nil
}

// readArea reads the TLV area whose info header is at off. want is the tlv_tot the header
// requires (protect_tlv_size), or -1 for any. It returns the TLVs and the area's end.
func readArea(r io.ReaderAt, off, size int64, magic uint16, want int) ([]TLV, int64, error) {
	name := "TLV area"
	if magic == TLVProtInfoMagic {
		name = "protected TLV area"
	}
	if off+tlvInfoLen > size {
		return nil, 0, fmt.Errorf("%s info header at 0x%x lies past the end of the %d-byte file: %w", name, off, size, ErrTruncated)
	}
	var ib [tlvInfoLen]byte
	if err := readAt(r, ib[:], off); err != nil {
		return nil, 0, err
	}
	gotMagic := binary.LittleEndian.Uint16(ib[0:])
	tot := int(binary.LittleEndian.Uint16(ib[2:]))
	switch {
	case gotMagic != magic:
		return nil, 0, formatErr("%s at 0x%x: magic 0x%04x, expected 0x%04x", name, off, gotMagic, magic)
	case tot < tlvInfoLen:
		return nil, 0, formatErr("%s at 0x%x: tlv_tot %d is smaller than its info header", name, off, tot)
	case want >= 0 && tot != want:
		return nil, 0, formatErr("%s at 0x%x: tlv_tot %d but the header's protect_tlv_size is %d", name, off, tot, want)
	}
	end := off + int64(tot)
	if end > size {
		return nil, 0, fmt.Errorf("%s at 0x%x declares %d bytes ending at 0x%x, but the file ends at 0x%x: %w", name, off, tot, end, size, ErrTruncated)
	}
	area := make([]byte, tot)
	if err := readAt(r, area, off); err != nil {
		return nil, 0, err
	}
	var tlvs []TLV
	for p := tlvInfoLen; p < tot; {
		if p+tlvHeaderLen > tot {
			return nil, 0, formatErr("%s: TLV header at 0x%x crosses the end of the area at 0x%x", name, off+int64(p), end)
		}
		t := TLV{
			Type:      binary.LittleEndian.Uint16(area[p:]),
			Len:       binary.LittleEndian.Uint16(area[p+2:]),
			Offset:    off + int64(p),
			Protected: magic == TLVProtInfoMagic,
		}
		v := p + tlvHeaderLen
		if v+int(t.Len) > tot {
			return nil, 0, formatErr("%s: TLV 0x%x at 0x%x declares %d bytes, past the end of the area at 0x%x", name, t.Type, t.Offset, t.Len, end)
		}
		t.Value = area[v : v+int(t.Len) : v+int(t.Len)]
		tlvs = append(tlvs, t)
		p = v + int(t.Len)
	}
	return tlvs, end, nil
}

// hashLen is the value length of each hash TLV type.
var hashLen = map[uint16]int{TLVSHA256: 32, TLVSHA384: 48, TLVSHA512: 64}

// interpret checks the TLVs that mean something to fieldflash and fills the Image.
func (img *Image) interpret() error {
	seen := map[uint16]bool{}
	for _, t := range img.TLVs {
		switch t.Type {
		case TLVSHA256, TLVSHA384, TLVSHA512:
			if t.Protected {
				return formatErr("hash TLV 0x%x at 0x%x is in the protected area, which it would have to cover itself", t.Type, t.Offset)
			}
			if int(t.Len) != hashLen[t.Type] {
				return formatErr("hash TLV 0x%x at 0x%x has %d bytes, expected %d", t.Type, t.Offset, t.Len, hashLen[t.Type])
			}
			if seen[t.Type] {
				return formatErr("second hash TLV 0x%x at 0x%x", t.Type, t.Offset)
			}
			if img.ImageHash == nil || t.Type == TLVSHA256 {
				img.ImageHash = t.Value
			}
		case TLVSecCnt:
			// Outside the protected area a counter could be changed without breaking the
			// hash or the signature, so it is refused rather than ignored.
			if !t.Protected {
				return formatErr("security counter TLV at 0x%x is not in the protected area", t.Offset)
			}
			if t.Len != 4 {
				return formatErr("security counter TLV at 0x%x has %d bytes, expected 4", t.Offset, t.Len)
			}
			if seen[t.Type] {
				return formatErr("second security counter TLV at 0x%x", t.Offset)
			}
			c := binary.LittleEndian.Uint32(t.Value)
			img.SecurityCounter = &c
		case TLVDependency:
			if !t.Protected {
				return formatErr("dependency TLV at 0x%x is not in the protected area", t.Offset)
			}
			if t.Len != 12 {
				return formatErr("dependency TLV at 0x%x has %d bytes, expected 12", t.Offset, t.Len)
			}
			v := t.Value
			img.Dependencies = append(img.Dependencies, Dependency{
				ImageID: v[0],
				Version: Version{Major: v[4], Minor: v[5], Revision: binary.LittleEndian.Uint16(v[6:]), Build: binary.LittleEndian.Uint32(v[8:])},
			})
		case TLVRSA2048, TLVECDSA224, TLVECDSASig, TLVRSA3072, TLVED25519, TLVSigPure:
			img.Signed = true
		}
		seen[t.Type] = true
	}
	if img.ImageHash == nil {
		return formatErr("no SHA256, SHA384 or SHA512 TLV in the TLV area at 0x%x", img.TLVOffset)
	}
	return nil
}

// Trailer is the swap-status trailer at the end of a padded image (imgtool --pad or
// --confirm), read with MCUboot's max_align of 8.
type Trailer struct {
	ImageOK  byte // 0x01 when confirmed (--confirm), 0xff when erased
	CopyDone byte
	SwapInfo byte
	SwapSize uint32
}

var bootMagic = [16]byte{0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80}

const trailerMaxAlign = 8

// Trailer reads the trailer of a padded image; it returns nil, nil when the image's last
// 16 bytes are not the boot magic (an image that is not padded to its slot).
func (img *Image) Trailer(r io.ReaderAt) (*Trailer, error) {
	const n = 16 + 4*trailerMaxAlign
	if img.Size-img.TLVEnd < n {
		return nil, nil
	}
	var b [n]byte
	if err := readAt(r, b[:], img.Size-n); err != nil {
		return nil, err
	}
	if [16]byte(b[n-16:]) != bootMagic {
		return nil, nil
	}
	return &Trailer{
		ImageOK:  b[n-16-trailerMaxAlign],
		CopyDone: b[n-16-2*trailerMaxAlign],
		SwapInfo: b[n-16-3*trailerMaxAlign],
		SwapSize: binary.LittleEndian.Uint32(b[n-16-4*trailerMaxAlign:]),
	}, nil
}
