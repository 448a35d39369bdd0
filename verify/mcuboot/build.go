package mcuboot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BuildOptions are the imgtool sign options Build understands. Zero values give what
// `imgtool sign --header-size 0x200 --pad-header` gives, unsigned.
type BuildOptions struct {
	// HeaderSize is hdr_size; 0 means 0x200 (Zephyr's usual ROM start offset). The space
	// after the 32-byte header is filled with 0xff, as imgtool 2.4.0's --pad-header does.
	HeaderSize uint16
	LoadAddr   uint32
	// Flags for the header, e.g. FlagRAMLoad (--load-addr) or FlagROMFixed (--rom-fixed).
	Flags   uint32
	Version Version
	// SecurityCounter, when set, adds a protected SEC_CNT TLV.
	SecurityCounter *uint32
	// Dependencies add protected DEPENDENCY TLVs after the security counter.
	Dependencies []Dependency
	// CustomTLVs are added to the protected area after the dependencies, in order
	// (imgtool --custom-tlv). Only Type and Value are used.
	CustomTLVs []TLV
	// Key signs the image (KEYHASH + ED25519 TLVs); nil leaves it unsigned (SHA256 only).
	Key ed25519.PrivateKey
	// PublicKeyFull puts the whole public key in a PUBKEY TLV instead of its KEYHASH
	// (imgtool --public-key-format full).
	PublicKeyFull bool
	// SlotSize, when set, is checked to hold the image and its trailer; Pad and Confirm
	// pad the image to it (imgtool --slot-size, --pad, --confirm).
	SlotSize uint32
	Pad      bool
	Confirm  bool
	// Align is the flash write size used to size the trailer (1, 2, 4 or 8; 0 means 8).
	Align int
	// MaxSectors sizes the swap status area of the trailer; 0 means imgtool's 128.
	MaxSectors int
}

// Build wraps payload into an MCUboot image laid out exactly as imgtool 2.4.0 lays it
// out: header, 0xff fill, payload, protected TLVs (SEC_CNT, DEPENDENCY, custom), then
// SHA256, KEYHASH (or PUBKEY) and ED25519.
func Build(payload []byte, opt BuildOptions) ([]byte, error) {
	hdrSize := opt.HeaderSize
	if hdrSize == 0 {
		hdrSize = 0x200
	}
	if hdrSize < HeaderLen {
		return nil, fmt.Errorf("header size %d is smaller than the %d-byte header", hdrSize, HeaderLen)
	}
	if uint64(len(payload)) > 0xffffffff {
		return nil, fmt.Errorf("payload of %d bytes does not fit img_size", len(payload))
	}
	if opt.Confirm {
		opt.Pad = true
	}
	if opt.Pad && opt.SlotSize == 0 {
		return nil, errors.New("padding needs the slot size")
	}

	le := binary.LittleEndian
	var prot []byte
	addTLV := func(area []byte, typ uint16, value []byte) ([]byte, error) {
		if len(value) > 0xffff {
			return nil, fmt.Errorf("TLV 0x%x value of %d bytes does not fit its u16 length", typ, len(value))
		}
		area = le.AppendUint16(area, typ)
		area = le.AppendUint16(area, uint16(len(value)))
		return append(area, value...), nil
	}
	var err error
	if opt.SecurityCounter != nil {
		if prot, err = addTLV(prot, TLVSecCnt, le.AppendUint32(nil, *opt.SecurityCounter)); err != nil {
			return nil, err
		}
	}
	for _, d := range opt.Dependencies {
		v := []byte{d.ImageID, 0, 0, 0, d.Version.Major, d.Version.Minor}
		v = le.AppendUint16(v, d.Version.Revision)
		v = le.AppendUint32(v, d.Version.Build)
		if prot, err = addTLV(prot, TLVDependency, v); err != nil {
			return nil, err
		}
	}
	for _, t := range opt.CustomTLVs {
		if prot, err = addTLV(prot, t.Type, t.Value); err != nil {
			return nil, err
		}
	}
	var protArea []byte
	if len(prot) > 0 {
		if len(prot)+tlvInfoLen > 0xffff {
			return nil, fmt.Errorf("protected TLVs of %d bytes do not fit protect_tlv_size", len(prot))
		}
		protArea = le.AppendUint16(protArea, TLVProtInfoMagic)
		protArea = le.AppendUint16(protArea, uint16(len(prot)+tlvInfoLen))
		protArea = append(protArea, prot...)
	}

	img := make([]byte, 0, int(hdrSize)+len(payload)+len(protArea)+256)
	img = le.AppendUint32(img, Magic)
	img = le.AppendUint32(img, opt.LoadAddr)
	img = le.AppendUint16(img, hdrSize)
	img = le.AppendUint16(img, uint16(len(protArea)))
	img = le.AppendUint32(img, uint32(len(payload)))
	img = le.AppendUint32(img, opt.Flags)
	img = append(img, opt.Version.Major, opt.Version.Minor)
	img = le.AppendUint16(img, opt.Version.Revision)
	img = le.AppendUint32(img, opt.Version.Build)
	img = le.AppendUint32(img, 0)
	for len(img) < int(hdrSize) {
		img = append(img, 0xff)
	}
	img = append(img, payload...)
	img = append(img, protArea...)

	digest := sha256.Sum256(img)
	var tlvs []byte
	tlvs, _ = addTLV(tlvs, TLVSHA256, digest[:])
	if opt.Key != nil {
		der, err := x509.MarshalPKIXPublicKey(opt.Key.Public())
		if err != nil {
			return nil, err
		}
		if opt.PublicKeyFull {
			tlvs, _ = addTLV(tlvs, TLVPubKey, der)
		} else {
			kh := sha256.Sum256(der)
			tlvs, _ = addTLV(tlvs, TLVKeyHash, kh[:])
		}
		// imgtool's Ed25519 key signs the digest, not the image (sign_digest).
		tlvs, _ = addTLV(tlvs, TLVED25519, ed25519.Sign(opt.Key, digest[:]))
	}
	img = le.AppendUint16(img, TLVInfoMagic)
	img = le.AppendUint16(img, uint16(len(tlvs)+tlvInfoLen))
	img = append(img, tlvs...)

	if opt.SlotSize > 0 {
		align := opt.Align
		if align == 0 {
			align = trailerMaxAlign
		}
		if align != 1 && align != 2 && align != 4 && align != 8 {
			return nil, fmt.Errorf("alignment %d: expected 1, 2, 4 or 8", align)
		}
		sectors := opt.MaxSectors
		if sectors == 0 {
			sectors = 128
		}
		trailer := sectors*3*align + 4*trailerMaxAlign + len(bootMagic)
		if int64(len(img))+int64(trailer) > int64(opt.SlotSize) {
			return nil, fmt.Errorf("image of 0x%x bytes and its 0x%x-byte trailer exceed the slot size 0x%x", len(img), trailer, opt.SlotSize)
		}
		if opt.Pad {
			for len(img) < int(opt.SlotSize) {
				img = append(img, 0xff)
			}
			copy(img[len(img)-len(bootMagic):], bootMagic[:])
			if opt.Confirm {
				img[len(img)-len(bootMagic)-trailerMaxAlign] = 0x01
			}
		}
	}
	return img, nil
}

// ParseVersion reads a version as imgtool's --version takes it: "major[.minor[.revision]][+build]".
func ParseVersion(s string) (Version, error) {
	core, build, hasBuild := strings.Cut(s, "+")
	parts := strings.Split(core, ".")
	if len(parts) > 3 || core == "" {
		return Version{}, fmt.Errorf("version %q: expected major[.minor[.revision]][+build]", s)
	}
	bits := []int{8, 8, 16}
	var n [3]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, bits[i])
		if err != nil {
			return Version{}, fmt.Errorf("version %q: part %q is not a number below 2^%d", s, p, bits[i])
		}
		n[i] = v
	}
	v := Version{Major: uint8(n[0]), Minor: uint8(n[1]), Revision: uint16(n[2])}
	if hasBuild {
		b, err := strconv.ParseUint(build, 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("version %q: build %q is not a number below 2^32", s, build)
		}
		v.Build = uint32(b)
	}
	return v, nil
}
