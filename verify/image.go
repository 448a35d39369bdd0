package verify

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fieldflash/fieldflash/verify/dfufile"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Next steps of image refusals.
const (
	nextRebuildImage = "the image inside the bundle is broken; ask the release team to rebuild it and sign a new bundle"
	nextFixFormat    = "ask the release team to fix the target's format in the signed metadata, or to rebuild the image in the declared format"
)

// CheckImage reads what a payload says of itself and checks it against its signed
// metadata. It runs after the payload's TUF hash passed, so the bytes are the ones the
// release team signed: a disagreement is a release mistake (or a signed attack on the
// device's own checks), never line noise.
//
// For Format "raw" or "" it returns nil, nil, unless the payload plainly describes itself
// (MCUboot magic at offset 0, or a DFU suffix whose CRC matches): then it is checked as
// that format, because a device will read those fields whatever the metadata says.
//
// Errors are *Error with CodeImageFormat (the image is malformed), CodeImageMismatch (its
// fields disagree with meta) or CodeMetadata (meta itself is unusable); Thing is left
// empty for the caller to name the payload. Read failures are returned as they are.
func CheckImage(ra io.ReaderAt, size int64, meta TargetMeta) (*ImageInfo, error) {
	format := meta.Format
	if format == "" || format == "raw" {
		sniffed, err := sniffFormat(ra, size)
		if err != nil || sniffed == "" {
			return nil, err
		}
		format = sniffed
	}
	switch format {
	case "mcuboot":
		return checkMCUboot(ra, size, meta)
	case "dfu", "dfuse", sniffedDFU:
		return checkDFU(ra, size, meta, format)
	default:
		return nil, errorf(CodeMetadata, "", nextFixFormat, "image format %q is none of raw, mcuboot, dfu, dfuse", format)
	}
}

// sniffedDFU is a raw payload with a valid DFU suffix: plain DFU or DfuSe, whichever the
// file is.
const sniffedDFU = "dfu or dfuse"

// sniffFormat names the format a raw payload plainly has, or "" for none.
func sniffFormat(ra io.ReaderAt, size int64) (string, error) {
	if size >= 4 {
		var m [4]byte
		if n, err := ra.ReadAt(m[:], 0); n < 4 {
			return "", fmt.Errorf("reading the first bytes of the image: %w", err)
		}
		if binary.LittleEndian.Uint32(m[:]) == mcuboot.Magic {
			return "mcuboot", nil
		}
	}
	if dfufile.HasSuffix(ra, size) {
		return sniffedDFU, nil
	}
	return "", nil
}

func isImageFormatErr(err error) bool {
	for _, e := range []error{mcuboot.ErrFormat, mcuboot.ErrTruncated, mcuboot.ErrHashMismatch,
		dfufile.ErrFormat, dfufile.ErrTruncated, dfufile.ErrCRC, dfufile.ErrNoSuffix} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func imageFormatErr(what string, err error) error {
	if !isImageFormatErr(err) {
		return err
	}
	return &Error{Code: CodeImageFormat, Reason: what + ": " + err.Error(), Next: nextRebuildImage, Err: err}
}

func mismatch(next, format string, args ...any) *Error {
	return errorf(CodeImageMismatch, "", next, format, args...)
}

func checkMCUboot(ra io.ReaderAt, size int64, meta TargetMeta) (*ImageInfo, error) {
	img, err := mcuboot.Parse(ra, size)
	if err != nil {
		return nil, imageFormatErr("MCUboot image", err)
	}
	// An encrypted payload's hash covers the plaintext, which only the device can recover;
	// the header and the protected TLVs are plaintext, so their fields are still compared
	// (the TUF hash already vouches for the bytes).
	if err := img.VerifyHash(ra); err != nil && !errors.Is(err, mcuboot.ErrEncrypted) {
		return nil, imageFormatErr("MCUboot image", err)
	}
	info := &ImageInfo{
		Format:          "mcuboot",
		Version:         img.Version.String(),
		SecurityCounter: img.SecurityCounter,
		ImageHash:       hex.EncodeToString(img.ImageHash),
		Signed:          img.Signed,
	}

	want, err := parseSemver(meta.Version)
	if err != nil {
		return nil, &Error{Code: CodeMetadata, Reason: "signed metadata version: " + err.Error(),
			Next: "ask the release team to re-sign with a semver version such as " + img.Version.String(), Err: err}
	}
	hv := img.Version
	// A pre-release ("1.2.3-rc.1") has no place in the MCUboot header, so only the core is
	// compared with major.minor.revision.
	if want.major != uint64(hv.Major) || want.minor != uint64(hv.Minor) || want.patch != uint64(hv.Revision) {
		return nil, mismatch("ask the release team to re-sign with the image's version "+hv.String()+", or to rebuild the image as "+meta.Version,
			"MCUboot header version is %d.%d.%d (build %d), the signed metadata says %s",
			hv.Major, hv.Minor, hv.Revision, hv.Build, meta.Version)
	}
	// Build metadata that is a number ("+45") names the header's build number and must
	// equal it. Absent build metadata ("1.2.3") leaves the build number unchecked: semver
	// gives build metadata no precedence, and release teams commonly sign the plain
	// version of a CI build. Other build metadata ("+sha.5114f85") cannot be a build
	// number and is not compared.
	if want.build != "" && isNumeric(want.build) {
		b, err := strconv.ParseUint(want.build, 10, 32)
		if err != nil || uint32(b) != hv.Build {
			return nil, mismatch("ask the release team to re-sign with the image's version "+hv.String()+", or to rebuild the image with build number "+want.build,
				"MCUboot header build number is %d, the signed metadata version %s says %s", hv.Build, meta.Version, want.build)
		}
	}
	if c := img.SecurityCounter; c != nil && uint64(*c) != meta.ReleaseCounter {
		return nil, mismatch(fmt.Sprintf("ask the release team to re-sign with release_counter %d (the image's security counter), or to rebuild the image with --security-counter %d", *c, meta.ReleaseCounter),
			"MCUboot security counter is %d, the signed metadata's release counter is %d", *c, meta.ReleaseCounter)
	}
	return info, nil
}

func checkDFU(ra io.ReaderAt, size int64, meta TargetMeta, format string) (*ImageInfo, error) {
	f, err := dfufile.Parse(ra, size)
	if err != nil {
		return nil, imageFormatErr("DFU file", err)
	}
	s := f.Suffix
	info := &ImageInfo{Format: "dfu", USBVendor: s.IDVendor, USBProduct: s.IDProduct, BcdDFU: s.BcdDFU}
	if f.DfuSe != nil {
		info.Format = "dfuse"
		for _, t := range f.DfuSe.Targets {
			dt := DfuSeTarget{Alt: int(t.Alt), Name: t.Name}
			for _, e := range t.Elements {
				dt.Elements = append(dt.Elements, DfuSeElement{Address: e.Address, Size: e.Size})
			}
			info.DfuSeTargets = append(info.DfuSeTargets, dt)
		}
	}
	if format != sniffedDFU && info.Format != format {
		kind := "a plain DFU"
		if f.DfuSe != nil {
			kind = "a DfuSe"
		}
		return nil, mismatch(nextFixFormat, "the file is %s file (bcdDFU 0x%04x), the signed metadata says format %q", kind, s.BcdDFU, format)
	}

	h := meta.Protocol
	// 0xffff in the suffix means "any device" (DFU 1.1, appendix B).
	if h.USBVendor != nil && s.IDVendor != 0xffff && *h.USBVendor != s.IDVendor {
		return nil, mismatch(fmt.Sprintf("ask the release team to re-sign with usb_vendor 0x%04x, or to rebuild the file for vendor 0x%04x", s.IDVendor, *h.USBVendor),
			"DFU suffix idVendor is 0x%04x, the signed metadata's usb_vendor is 0x%04x", s.IDVendor, *h.USBVendor)
	}
	if h.USBProduct != nil && s.IDProduct != 0xffff && *h.USBProduct != s.IDProduct {
		return nil, mismatch(fmt.Sprintf("ask the release team to re-sign with usb_product 0x%04x, or to rebuild the file for product 0x%04x", s.IDProduct, *h.USBProduct),
			"DFU suffix idProduct is 0x%04x, the signed metadata's usb_product is 0x%04x", s.IDProduct, *h.USBProduct)
	}
	if f.DfuSe == nil {
		return info, nil
	}
	// The hints must name something the file carries: the alternate setting a target, and
	// the address the start of an element (of that target, when both are given).
	targets := f.DfuSe.Targets
	if h.DFUAlt != nil {
		var alts []int
		var hit []dfufile.Target
		for _, t := range targets {
			alts = append(alts, int(t.Alt))
			if int(t.Alt) == *h.DFUAlt {
				hit = append(hit, t)
			}
		}
		if len(hit) == 0 {
			return nil, mismatch(fmt.Sprintf("ask the release team to re-sign with one of the file's alternate settings %v as dfu_alt", alts),
				"the DfuSe file has targets for alternate settings %v, the signed metadata's dfu_alt is %d", alts, *h.DFUAlt)
		}
		targets = hit
	}
	if h.Address != nil {
		var addrs []string
		for _, t := range targets {
			for _, e := range t.Elements {
				if uint64(e.Address) == *h.Address {
					return info, nil
				}
				addrs = append(addrs, fmt.Sprintf("0x%08x", e.Address))
			}
		}
		where := "the DfuSe file's elements start at"
		if h.DFUAlt != nil {
			where = fmt.Sprintf("the DfuSe file's elements for alternate setting %d start at", *h.DFUAlt)
		}
		return nil, mismatch("ask the release team to re-sign with the element's address, or to rebuild the file for the address in the metadata",
			"%s %v, the signed metadata's address is 0x%08x", where, addrs, *h.Address)
	}
	return info, nil
}
