package verify

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldflash/fieldflash/verify/dfufile"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// The upstream vectors in testdata/: imgtool images and dfu-util files (see their READMEs).
const (
	mcubootVectors = "../testdata/mcuboot"
	dfuVectors     = "../testdata/dfu"
)

func readImageVector(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkBytes(b []byte, meta TargetMeta) (*ImageInfo, error) {
	return CheckImage(bytes.NewReader(b), int64(len(b)), meta)
}

func ptr[T any](v T) *T { return &v }

// wantImageErr asserts a refusal with code, whose message names every string in says.
func wantImageErr(t *testing.T, err error, code Code, says ...string) {
	t.Helper()
	var ve *Error
	if !errors.As(err, &ve) || ve.Code != code {
		t.Fatalf("got %v, want a %s refusal", err, code)
	}
	if ve.Next == "" {
		t.Errorf("refusal without a next step: %v", err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err.Error(), s)
		}
	}
	t.Log(err)
}

func TestMCUbootImageThatAgreesWithItsMetadataPasses(t *testing.T) {
	cases := []struct {
		file    string
		meta    TargetMeta
		version string
		counter *uint32
		hash    string
		signed  bool
	}{
		{"ed25519-basic.bin", TargetMeta{Format: "mcuboot", Version: "1.2.3+45", ReleaseCounter: 7}, "1.2.3+45", ptr[uint32](7),
			"391c7c6fddf770d28dbb843e2e1ec4a25c9786c28074a6f9125a280967ee24c4", true},
		{"ed25519-confirm.bin", TargetMeta{Format: "mcuboot", Version: "1.2.3", ReleaseCounter: 7}, "1.2.3+45", ptr[uint32](7),
			"391c7c6fddf770d28dbb843e2e1ec4a25c9786c28074a6f9125a280967ee24c4", true},
		{"ed25519-custom-tlv.bin", TargetMeta{Format: "mcuboot", Version: "1.2.3-rc.1+45", ReleaseCounter: 7}, "1.2.3+45", ptr[uint32](7),
			"0e07c2b3d7cc22270a13aa5f688551ec81fccecf0f263bf833f4a519bb993206", true},
		{"ecdsa-p256-basic.bin", TargetMeta{Format: "mcuboot", Version: "2.0.0+0", ReleaseCounter: 0x02000000}, "2.0.0+0", ptr[uint32](0x02000000),
			"adbd9d3fd337983c5660365d84a636d23ccbf20ee69a212872d809e6dcb11efb", true},
		// No SEC_CNT TLV: the release counter has nothing to agree with.
		{"unsigned-hash-only.bin", TargetMeta{Format: "mcuboot", Version: "1.0.0", ReleaseCounter: 99}, "1.0.0+0", nil,
			"c037eb7fa42f4cbd961719ede9ca2ded125f3054c4a9ad6288af31143248a836", false},
		// The image describes itself although the metadata says raw.
		{"ed25519-ram-load.bin", TargetMeta{Version: "1.2.3+45", ReleaseCounter: 7}, "1.2.3+45", ptr[uint32](7),
			"8fdaa7f1170b900e6a16c9df7ecc23caa56222117903f2181f84a13b3c20006d", true},
		// Signatures are the device's check (TargetMeta carries no image key): a
		// well-formed image signed by another key agrees with its metadata.
		{"fail-sig-other-key.bin", TargetMeta{Format: "mcuboot", Version: "1.2.3+45", ReleaseCounter: 7}, "1.2.3+45", ptr[uint32](7),
			"391c7c6fddf770d28dbb843e2e1ec4a25c9786c28074a6f9125a280967ee24c4", true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			info, err := checkBytes(readImageVector(t, mcubootVectors, c.file), c.meta)
			if err != nil {
				t.Fatal(err)
			}
			if info == nil || info.Format != "mcuboot" || info.Version != c.version || info.ImageHash != c.hash || info.Signed != c.signed {
				t.Fatalf("info %+v", info)
			}
			if (c.counter == nil) != (info.SecurityCounter == nil) || (c.counter != nil && *c.counter != *info.SecurityCounter) {
				t.Fatalf("security counter %v, want %v", info.SecurityCounter, c.counter)
			}
		})
	}
}

func TestMCUbootImageWhoseVersionDisagreesIsRefused(t *testing.T) {
	img := readImageVector(t, mcubootVectors, "ed25519-basic.bin")
	for _, v := range []string{"1.2.4", "1.3.3", "2.2.3+45", "1.2.3+46", "1.2.3+4294967296", "256.2.3"} {
		t.Run(v, func(t *testing.T) {
			_, err := checkBytes(img, TargetMeta{Format: "mcuboot", Version: v, ReleaseCounter: 7})
			wantImageErr(t, err, CodeImageMismatch, v, "re-sign with the image's version 1.2.3+45")
		})
	}
	// A raw target whose bytes are an MCUboot image is held to the same rule.
	_, err := checkBytes(img, TargetMeta{Format: "raw", Version: "1.2.4", ReleaseCounter: 7})
	wantImageErr(t, err, CodeImageMismatch, "1.2.3", "1.2.4")
}

func TestMCUbootImageWhoseSecurityCounterDisagreesIsRefused(t *testing.T) {
	img := readImageVector(t, mcubootVectors, "ed25519-basic.bin")
	_, err := checkBytes(img, TargetMeta{Format: "mcuboot", Version: "1.2.3+45", ReleaseCounter: 8})
	wantImageErr(t, err, CodeImageMismatch, "security counter is 7", "release counter is 8", "re-sign with release_counter 7")
}

func TestBrokenMCUbootImagesAreRefusedAsMalformed(t *testing.T) {
	meta := TargetMeta{Format: "mcuboot", Version: "1.2.3+45", ReleaseCounter: 7}
	for file, says := range map[string]string{
		"fail-header-magic.bin":      "0x96f3b83e",
		"fail-tlv-truncated.bin":     "truncated",
		"fail-hash-flipped-byte.bin": "053f9f476caa2c082ff3dbed826afebb555e4f477f82406716966cd60db0f556",
	} {
		t.Run(file, func(t *testing.T) {
			_, err := checkBytes(readImageVector(t, mcubootVectors, file), meta)
			wantImageErr(t, err, CodeImageFormat, says)
		})
	}
	// Declared MCUboot, but a DFU file.
	_, err := checkBytes(readImageVector(t, dfuVectors, "suffix-0483-df11.dfu"), meta)
	wantImageErr(t, err, CodeImageFormat, "magic")
	// A raw payload that starts with the MCUboot magic must be a whole MCUboot image.
	_, err = checkBytes(readImageVector(t, mcubootVectors, "fail-tlv-truncated.bin"), TargetMeta{Format: "raw", Version: "1.2.3"})
	wantImageErr(t, err, CodeImageFormat, "truncated")
}

func TestMetadataVersionThatIsNotSemverIsRefused(t *testing.T) {
	_, err := checkBytes(readImageVector(t, mcubootVectors, "ed25519-basic.bin"), TargetMeta{Format: "mcuboot", Version: "v1.2", ReleaseCounter: 7})
	wantImageErr(t, err, CodeMetadata, "v1.2")
}

func TestDFUFileThatAgreesWithItsMetadataPasses(t *testing.T) {
	plain := readImageVector(t, dfuVectors, "suffix-0483-df11.dfu")
	info, err := checkBytes(plain, TargetMeta{Format: "dfu", Version: "1.0.0", Protocol: ProtocolHints{USBVendor: ptr[uint16](0x0483), USBProduct: ptr[uint16](0xdf11)}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "dfu" || info.USBVendor != 0x0483 || info.USBProduct != 0xdf11 || info.BcdDFU != 0x0100 || info.DfuSeTargets != nil {
		t.Fatalf("info %+v", info)
	}

	two := readImageVector(t, dfuVectors, "dfuse-2targets.dfu")
	info, err = checkBytes(two, TargetMeta{Format: "dfuse", Version: "1.0.0", Protocol: ProtocolHints{DFUAlt: ptr(1), Address: ptr[uint64](0x1fffc000), USBVendor: ptr[uint16](0x0483)}})
	if err != nil {
		t.Fatal(err)
	}
	want := []DfuSeTarget{
		{Alt: 0, Name: "ST...", Elements: []DfuSeElement{{0x08000000, 4096}}},
		{Alt: 1, Name: "ST...", Elements: []DfuSeElement{{0x1fffc000, 16}}},
	}
	if info.Format != "dfuse" || info.BcdDFU != 0x011a || len(info.DfuSeTargets) != 2 {
		t.Fatalf("info %+v", info)
	}
	for i := range want {
		g := info.DfuSeTargets[i]
		if g.Alt != want[i].Alt || g.Name != want[i].Name || len(g.Elements) != 1 || g.Elements[0] != want[i].Elements[0] {
			t.Errorf("target %d: %+v, want %+v", i, g, want[i])
		}
	}

	// The second element's address, without an alternate setting.
	if _, err := checkBytes(readImageVector(t, dfuVectors, "dfuse-2elements.dfu"), TargetMeta{Format: "dfuse", Version: "1.0.0", Protocol: ProtocolHints{Address: ptr[uint64](0x08010000)}}); err != nil {
		t.Fatal(err)
	}

	// A suffix for any vendor (0xffff) agrees with every vendor hint.
	anyVendor := dfufile.AppendSuffix(readImageVector(t, dfuVectors, "input/payload-5000.raw"), dfufile.Suffix{IDVendor: 0xffff, IDProduct: 0xffff})
	if _, err := checkBytes(anyVendor, TargetMeta{Format: "dfu", Version: "1.0.0", Protocol: ProtocolHints{USBVendor: ptr[uint16](0x1209), USBProduct: ptr[uint16](0x0001)}}); err != nil {
		t.Fatal(err)
	}
}

func TestRawPayloadsThatDescribeThemselvesAreChecked(t *testing.T) {
	// A raw target with a valid DfuSe file inside is read as DfuSe.
	info, err := checkBytes(readImageVector(t, dfuVectors, "dfuse-2elements.dfu"), TargetMeta{Format: "raw", Version: "1.0.0"})
	if err != nil || info == nil || info.Format != "dfuse" || len(info.DfuSeTargets) != 1 || len(info.DfuSeTargets[0].Elements) != 2 {
		t.Fatalf("%+v %v", info, err)
	}
	// ... and must agree with the hints.
	_, err = checkBytes(readImageVector(t, dfuVectors, "suffix-0483-df11.dfu"), TargetMeta{Version: "1.0.0", Protocol: ProtocolHints{USBProduct: ptr[uint16](0xdf12)}})
	wantImageErr(t, err, CodeImageMismatch, "0xdf11", "0xdf12")

	// Bytes that describe nothing, and a suffix whose CRC does not match (so not a DFU
	// suffix at all), stay raw.
	for _, b := range [][]byte{
		readImageVector(t, dfuVectors, "input/payload-5000.raw"),
		readImageVector(t, mcubootVectors, "input/payload-3000.raw"),
		readImageVector(t, dfuVectors, "fail-suffix-crc.dfu"),
		nil,
	} {
		info, err := checkBytes(b, TargetMeta{Format: "raw", Version: "1.0.0"})
		if info != nil || err != nil {
			t.Errorf("%d raw bytes: %+v %v", len(b), info, err)
		}
	}
}

func TestDFUFileWithABadCRCIsRefused(t *testing.T) {
	_, err := checkBytes(readImageVector(t, dfuVectors, "fail-suffix-crc.dfu"), TargetMeta{Format: "dfu", Version: "1.0.0"})
	wantImageErr(t, err, CodeImageFormat, "CRC", "0x2202910f", "0x220291f0")
	if !errors.Is(err, dfufile.ErrCRC) {
		t.Errorf("%v does not wrap dfufile.ErrCRC", err)
	}
}

func TestDFUFileThatDisagreesWithItsMetadataIsRefused(t *testing.T) {
	plain := readImageVector(t, dfuVectors, "suffix-0483-df11.dfu")
	two := readImageVector(t, dfuVectors, "dfuse-2targets.dfu")
	cases := []struct {
		name string
		file []byte
		meta TargetMeta
		says []string
	}{
		{"vendor", plain, TargetMeta{Format: "dfu", Protocol: ProtocolHints{USBVendor: ptr[uint16](0x1209)}}, []string{"0x0483", "0x1209", "usb_vendor"}},
		{"product", two, TargetMeta{Format: "dfuse", Protocol: ProtocolHints{USBProduct: ptr[uint16](0xdf12)}}, []string{"0xdf11", "0xdf12"}},
		{"DfuSe declared plain", two, TargetMeta{Format: "dfu"}, []string{"a DfuSe file", `"dfu"`}},
		{"plain declared DfuSe", plain, TargetMeta{Format: "dfuse"}, []string{"a plain DFU file", `"dfuse"`}},
		{"no such alt", two, TargetMeta{Format: "dfuse", Protocol: ProtocolHints{DFUAlt: ptr(2)}}, []string{"[0 1]", "dfu_alt is 2"}},
		{"address of the other alt", two, TargetMeta{Format: "dfuse", Protocol: ProtocolHints{DFUAlt: ptr(1), Address: ptr[uint64](0x08000000)}},
			[]string{"0x1fffc000", "0x08000000", "alternate setting 1"}},
		{"address in no element", two, TargetMeta{Format: "dfuse", Protocol: ProtocolHints{Address: ptr[uint64](0x08004000)}},
			[]string{"0x08000000", "0x1fffc000", "0x08004000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.meta.Version = "1.0.0"
			_, err := checkBytes(c.file, c.meta)
			wantImageErr(t, err, CodeImageMismatch, c.says...)
		})
	}
}

// TestImagesBuiltForTheDemoPassTheirOwnChecks: what the simulator and the demo build with
// mcuboot.Build and dfufile.BuildDfuSe is accepted for the metadata it was built for.
func TestImagesBuiltForTheDemoPassTheirOwnChecks(t *testing.T) {
	img, err := mcuboot.Build(bytes.Repeat([]byte{0xa5}, 10000), mcuboot.BuildOptions{Version: mcuboot.Version{Major: 3, Minor: 1, Revision: 4, Build: 15}, SecurityCounter: ptr[uint32](12)})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := checkBytes(img, TargetMeta{Format: "mcuboot", Version: "3.1.4+15", ReleaseCounter: 12}); err != nil || info.Version != "3.1.4+15" {
		t.Fatalf("%+v %v", info, err)
	}
	dfu, err := dfufile.BuildDfuSe([]dfufile.TargetImage{{Alt: 0, Name: "Internal Flash", Blocks: []dfufile.Block{{Address: 0x08008000, Data: img}}}}, dfufile.Suffix{IDVendor: 0x0483, IDProduct: 0xdf11})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := checkBytes(dfu, TargetMeta{Format: "dfuse", Version: "3.1.4", Protocol: ProtocolHints{DFUAlt: ptr(0), Address: ptr[uint64](0x08008000)}}); err != nil || info.DfuSeTargets[0].Name != "Internal Flash" {
		t.Fatalf("%+v %v", info, err)
	}
}

func FuzzCheckImage(f *testing.F) {
	for _, v := range []struct{ dir, name string }{
		{mcubootVectors, "ed25519-basic.bin"}, {mcubootVectors, "ed25519-dependency.bin"}, {mcubootVectors, "unsigned-hash-only.bin"},
		{dfuVectors, "suffix-0483-df11.dfu"}, {dfuVectors, "dfuse-2targets.dfu"},
	} {
		b, err := os.ReadFile(filepath.Join(v.dir, v.name))
		if err != nil {
			f.Fatal(err)
		}
		for _, format := range []string{"", "mcuboot", "dfu", "dfuse"} {
			f.Add(b, format, "1.2.3+45", uint64(7), 1, uint64(0x1fffc000))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, format, version string, counter uint64, alt int, addr uint64) {
		meta := TargetMeta{Format: format, Version: version, ReleaseCounter: counter,
			Protocol: ProtocolHints{DFUAlt: &alt, Address: &addr, USBVendor: ptr[uint16](0x0483)}}
		info, err := checkBytes(data, meta)
		if err != nil {
			if info != nil {
				t.Fatal("info with an error")
			}
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("a refusal that is not a *Error: %v", err)
			}
			return
		}
		if info != nil && info.Format == "mcuboot" && info.SecurityCounter != nil && uint64(*info.SecurityCounter) != counter {
			t.Fatalf("counter %d accepted for metadata %d", *info.SecurityCounter, counter)
		}
	})
}
