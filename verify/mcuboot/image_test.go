package mcuboot

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vectors is the upstream imgtool test set (testdata/mcuboot, see its README).
const vectors = "../../testdata/mcuboot"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadPublic(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	blk, _ := pem.Decode(readVector(t, "keys/"+name+".pub.pem"))
	if blk == nil {
		t.Fatalf("keys/%s.pub.pem: no PEM block", name)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func loadEd25519Private(t testing.TB, name string) ed25519.PrivateKey {
	t.Helper()
	blk, _ := pem.Decode(readVector(t, "keys/"+name+".pem"))
	if blk == nil {
		t.Fatalf("keys/%s.pem: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

type wantTLV struct {
	typ  uint16
	len  uint16
	off  int64
	prot bool
}

type vector struct {
	file        string
	size        int64
	loadAddr    uint32
	flags       uint32
	version     string
	counter     *uint32
	protOff     int64 // -1 none
	tlvOff      int64
	tlvEnd      int64
	tlvs        []wantTLV
	hash        string
	signed      bool
	key         string // key the README pairs the vector with
	parseErr    error
	hashErr     error
	sigErr      error
	deps        []Dependency
	imageOK     *byte // padded images: trailer image_ok
	custom      map[uint16]string
	notSameHash bool
}

func u32(v uint32) *uint32 { return &v }
func b8(v byte) *byte      { return &v }

// basicTLVs is the TLV layout shared by every image built like ed25519-basic.bin.
var basicTLVs = []wantTLV{{0x50, 4, 0xdbc, true}, {0x10, 32, 0xdc8, false}, {0x01, 32, 0xdec, false}, {0x24, 64, 0xe10, false}}

const basicHash = "391c7c6fddf770d28dbb843e2e1ec4a25c9786c28074a6f9125a280967ee24c4"

var mcubootVectors = []vector{
	{file: "ed25519-basic.bin", size: 3668, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: basicHash, signed: true, key: "ed25519"},
	{file: "ecdsa-p256-basic.bin", size: 70674, version: "2.0.0+0", counter: u32(0x02000000), protOff: 0x11370, tlvOff: 0x1137c, tlvEnd: 0x11412,
		tlvs: []wantTLV{{0x50, 4, 0x11374, true}, {0x10, 32, 0x11380, false}, {0x01, 32, 0x113a4, false}, {0x22, 70, 0x113c8, false}},
		hash: "adbd9d3fd337983c5660365d84a636d23ccbf20ee69a212872d809e6dcb11efb", signed: true, key: "ecdsa-p256"},
	{file: "ed25519-pad.bin", size: 262144, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: basicHash, signed: true, key: "ed25519", imageOK: b8(0xff)},
	{file: "ed25519-confirm.bin", size: 262144, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: basicHash, signed: true, key: "ed25519", imageOK: b8(0x01)},
	{file: "ed25519-dependency.bin", size: 3700, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xde4, tlvEnd: 0xe74,
		tlvs: []wantTLV{{0x50, 4, 0xdbc, true}, {0x40, 12, 0xdc4, true}, {0x40, 12, 0xdd4, true}, {0x10, 32, 0xde8, false}, {0x01, 32, 0xe0c, false}, {0x24, 64, 0xe30, false}},
		hash: "9c054ad8799331968141e98e9dd1b5822d3962b6ce908923a000ca142a3f8932", signed: true, key: "ed25519",
		deps: []Dependency{{1, Version{1, 0, 0, 0}}, {2, Version{0, 5, 1, 3}}}},
	{file: "ed25519-custom-tlv.bin", size: 3689, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdd9, tlvEnd: 0xe69,
		tlvs: []wantTLV{{0x50, 4, 0xdbc, true}, {0xa0, 4, 0xdc4, true}, {0x1234, 9, 0xdcc, true}, {0x10, 32, 0xddd, false}, {0x01, 32, 0xe01, false}, {0x24, 64, 0xe25, false}},
		hash: "0e07c2b3d7cc22270a13aa5f688551ec81fccecf0f263bf833f4a519bb993206", signed: true, key: "ed25519",
		custom: map[uint16]string{0xa0: "deadbeef", 0x1234: "68656c6c6f2d746c76"}},
	{file: "ed25519-rom-fixed.bin", size: 3668, loadAddr: 0x08020000, flags: 0x100, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: "5707f847002876b43e2fe61c49a4a8b1ae1a03d866919f8f936c6dce98786dd4", signed: true, key: "ed25519"},
	{file: "ed25519-ram-load.bin", size: 3668, loadAddr: 0x20008000, flags: 0x20, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: "8fdaa7f1170b900e6a16c9df7ecc23caa56222117903f2181f84a13b3c20006d", signed: true, key: "ed25519"},
	{file: "ecdsa-p256-pubkey-full.bin", size: 3733, version: "2.0.0+0", counter: u32(0x02000000), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe95,
		tlvs: []wantTLV{{0x50, 4, 0xdbc, true}, {0x10, 32, 0xdc8, false}, {0x02, 91, 0xdec, false}, {0x22, 70, 0xe4b, false}},
		hash: "87249ee7f5217b2cf176e1b3b438449e1d64c3a274153c7ea169b365c6a7de9c", signed: true, key: "ecdsa-p256"},
	{file: "unsigned-hash-only.bin", size: 3552, version: "1.0.0+0", protOff: -1, tlvOff: 0xdb8, tlvEnd: 0xde0,
		tlvs: []wantTLV{{0x10, 32, 0xdbc, false}}, hash: "c037eb7fa42f4cbd961719ede9ca2ded125f3054c4a9ad6288af31143248a836",
		key: "ed25519", sigErr: ErrNoSignature},
	{file: "fail-header-magic.bin", size: 3668, parseErr: ErrFormat},
	{file: "fail-tlv-truncated.bin", size: 3636, parseErr: ErrTruncated},
	{file: "fail-hash-flipped-byte.bin", size: 3668, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: basicHash, signed: true, key: "ed25519", hashErr: ErrHashMismatch, sigErr: ErrHashMismatch},
	{file: "fail-sig-other-key.bin", size: 3675, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe5b,
		tlvs: []wantTLV{{0x50, 4, 0xdbc, true}, {0x10, 32, 0xdc8, false}, {0x01, 32, 0xdec, false}, {0x22, 71, 0xe10, false}},
		hash: basicHash, signed: true, key: "ed25519", sigErr: ErrOtherKey},
	{file: "fail-sig-spliced.bin", size: 3668, version: "1.2.3+45", counter: u32(7), protOff: 0xdb8, tlvOff: 0xdc4, tlvEnd: 0xe54,
		tlvs: basicTLVs, hash: basicHash, signed: true, key: "ed25519", sigErr: ErrBadSignature},
}

// TestEveryImgtoolVectorReadsAsTheReadmeSays parses each upstream image, compares every
// field the README lists, and checks hash and signature with the key the README pairs
// it with.
func TestEveryImgtoolVectorReadsAsTheReadmeSays(t *testing.T) {
	entries, _ := filepath.Glob(filepath.Join(vectors, "*.bin"))
	if len(entries) != len(mcubootVectors) {
		t.Errorf("%d .bin files in %s, %d described here: a vector is untested", len(entries), vectors, len(mcubootVectors))
	}
	for _, v := range mcubootVectors {
		t.Run(v.file, func(t *testing.T) {
			data := readVector(t, v.file)
			if int64(len(data)) != v.size {
				t.Fatalf("file size %d, README says %d", len(data), v.size)
			}
			r := bytes.NewReader(data)
			img, err := Parse(r, v.size)
			if v.parseErr != nil {
				if !errors.Is(err, v.parseErr) {
					t.Fatalf("Parse: %v, want %v", err, v.parseErr)
				}
				t.Logf("refused as expected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			h := img.Header
			if h.Magic != Magic || h.HdrSize != 0x200 || h.ImgSize != uint32(img.TLVOffset-int64(h.ProtectTLVSize)-0x200) {
				t.Errorf("header %+v", h)
			}
			if h.LoadAddr != v.loadAddr || h.Flags != v.flags {
				t.Errorf("load_addr 0x%x flags 0x%x, want 0x%x 0x%x", h.LoadAddr, h.Flags, v.loadAddr, v.flags)
			}
			if got := img.Version.String(); got != v.version {
				t.Errorf("version %s, want %s", got, v.version)
			}
			switch {
			case v.counter == nil && img.SecurityCounter != nil:
				t.Errorf("security counter %d, want none", *img.SecurityCounter)
			case v.counter != nil && (img.SecurityCounter == nil || *img.SecurityCounter != *v.counter):
				t.Errorf("security counter %v, want %d", img.SecurityCounter, *v.counter)
			}
			if img.ProtectedTLVOffset != v.protOff || img.TLVOffset != v.tlvOff || img.TLVEnd != v.tlvEnd {
				t.Errorf("areas prot@0x%x tlv@0x%x end 0x%x, want 0x%x 0x%x 0x%x", img.ProtectedTLVOffset, img.TLVOffset, img.TLVEnd, v.protOff, v.tlvOff, v.tlvEnd)
			}
			var got []wantTLV
			for _, tlv := range img.TLVs {
				got = append(got, wantTLV{tlv.Type, tlv.Len, tlv.Offset, tlv.Protected})
			}
			if fmt.Sprint(got) != fmt.Sprint(v.tlvs) {
				t.Errorf("TLVs %v\nwant %v", got, v.tlvs)
			}
			if hex.EncodeToString(img.ImageHash) != v.hash {
				t.Errorf("image hash %x, want %s", img.ImageHash, v.hash)
			}
			if img.Signed != v.signed {
				t.Errorf("signed %v, want %v", img.Signed, v.signed)
			}
			if fmt.Sprint(img.Dependencies) != fmt.Sprint(v.deps) {
				t.Errorf("dependencies %v, want %v", img.Dependencies, v.deps)
			}
			for typ, val := range v.custom {
				f := img.Find(typ)
				if len(f) != 1 || hex.EncodeToString(f[0].Value) != val || !f[0].Protected {
					t.Errorf("custom TLV 0x%x = %+v, want protected %s", typ, f, val)
				}
			}
			tr, err := img.Trailer(r)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case v.imageOK == nil && tr != nil:
				t.Errorf("trailer %+v on an unpadded image", tr)
			case v.imageOK != nil && (tr == nil || tr.ImageOK != *v.imageOK || tr.SwapSize != 0xffffffff):
				t.Errorf("trailer %+v, want image_ok 0x%02x", tr, *v.imageOK)
			}

			if err := img.VerifyHash(r); !errors.Is(err, v.hashErr) || (v.hashErr == nil) != (err == nil) {
				t.Errorf("VerifyHash: %v, want %v", err, v.hashErr)
			}
			err = img.VerifySignature(r, loadPublic(t, v.key))
			if (v.sigErr == nil) != (err == nil) || !errors.Is(err, v.sigErr) {
				t.Errorf("VerifySignature with %s: %v, want %v", v.key, err, v.sigErr)
			}
			if err != nil {
				t.Logf("refused as expected: %v", err)
			}
		})
	}
}

// TestSplicedSignatureFailsWithEitherKey: with the key the KEYHASH names the signature is
// wrong, and with the key that really signed, the KEYHASH does not name it (the imgtool
// quirk the README describes: imgtool itself accepts the second case).
func TestSplicedSignatureFailsWithEitherKey(t *testing.T) {
	data := readVector(t, "fail-sig-spliced.bin")
	img, err := Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := img.VerifySignature(bytes.NewReader(data), loadPublic(t, "ed25519")); !errors.Is(err, ErrBadSignature) {
		t.Errorf("with the KEYHASH key: %v, want ErrBadSignature", err)
	}
	if err := img.VerifySignature(bytes.NewReader(data), loadPublic(t, "ed25519-alt")); !errors.Is(err, ErrOtherKey) {
		t.Errorf("with the key that signed: %v, want ErrOtherKey", err)
	}
}

// TestOtherKeyImageVerifiesWithItsOwnKey shows fail-sig-other-key.bin is well formed: it
// fails only because the trusted key is not its signer.
func TestOtherKeyImageVerifiesWithItsOwnKey(t *testing.T) {
	data := readVector(t, "fail-sig-other-key.bin")
	img, err := Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := img.VerifySignature(bytes.NewReader(data), loadPublic(t, "ecdsa-p256")); err != nil {
		t.Errorf("with its ECDSA signer: %v", err)
	}
	for _, k := range []string{"ed25519", "ed25519-alt"} {
		if err := img.VerifySignature(bytes.NewReader(data), loadPublic(t, k)); !errors.Is(err, ErrOtherKey) {
			t.Errorf("with %s: %v, want ErrOtherKey", k, err)
		}
	}
}

func TestKeyHashesMatchTheReadme(t *testing.T) {
	for name, want := range map[string]string{
		"ed25519":     "cfdc87b2537874c2e5c565151d02d539b6c64f285869065e02d7a00436e56da2",
		"ecdsa-p256":  "8302929a468fc275f64f7a340d60b39f2b04ea6d5bcaedc6310fac5a2aa835a1",
		"ed25519-alt": "b3133896269e8240595c793e8b47c0bbdcb3665013002029149836d6bd77ed3f",
	} {
		got, err := KeyHash(loadPublic(t, name))
		if err != nil || hex.EncodeToString(got) != want {
			t.Errorf("%s: %x %v, want %s", name, got, err, want)
		}
	}
}

// TestBuildReproducesImgtoolByteForByte signs the README's input with the README's options
// and compares with what imgtool 2.4.0 wrote. Ed25519 and unsigned images are
// deterministic; the ECDSA vectors are not, so they are not rebuilt.
func TestBuildReproducesImgtoolByteForByte(t *testing.T) {
	payload := readVector(t, "input/payload-3000.raw")
	key := loadEd25519Private(t, "ed25519")
	base := func() BuildOptions {
		return BuildOptions{HeaderSize: 0x200, SlotSize: 0x40000, Align: 4, Version: Version{1, 2, 3, 45}, SecurityCounter: u32(7), Key: key}
	}
	cases := map[string]func(o *BuildOptions){
		"ed25519-basic.bin":   func(o *BuildOptions) {},
		"ed25519-pad.bin":     func(o *BuildOptions) { o.Pad = true },
		"ed25519-confirm.bin": func(o *BuildOptions) { o.Confirm = true },
		"ed25519-dependency.bin": func(o *BuildOptions) {
			o.Dependencies = []Dependency{{1, Version{1, 0, 0, 0}}, {2, Version{0, 5, 1, 3}}}
		},
		"ed25519-custom-tlv.bin": func(o *BuildOptions) {
			o.CustomTLVs = []TLV{{Type: 0xa0, Value: []byte{0xde, 0xad, 0xbe, 0xef}}, {Type: 0x1234, Value: []byte("hello-tlv")}}
		},
		"ed25519-rom-fixed.bin": func(o *BuildOptions) { o.LoadAddr, o.Flags = 0x08020000, FlagROMFixed },
		"ed25519-ram-load.bin":  func(o *BuildOptions) { o.LoadAddr, o.Flags = 0x20008000, FlagRAMLoad },
		"unsigned-hash-only.bin": func(o *BuildOptions) {
			o.Key, o.SecurityCounter, o.Version = nil, nil, Version{1, 0, 0, 0}
		},
	}
	for file, tweak := range cases {
		t.Run(file, func(t *testing.T) {
			opt := base()
			tweak(&opt)
			got, err := Build(payload, opt)
			if err != nil {
				t.Fatal(err)
			}
			want := readVector(t, file)
			if !bytes.Equal(got, want) {
				t.Fatalf("built %d bytes sha256 %x, imgtool wrote %d bytes sha256 %x; first difference at 0x%x",
					len(got), sha256.Sum256(got), len(want), sha256.Sum256(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestBuildRefusesAnImageThatDoesNotFitItsSlot(t *testing.T) {
	_, err := Build(make([]byte, 0x40000), BuildOptions{SlotSize: 0x40000, Align: 4})
	if err == nil {
		t.Fatal("a payload as large as the slot was accepted")
	}
	t.Log(err)
}

func TestParseVersionTakesImgtoolSyntax(t *testing.T) {
	for in, want := range map[string]string{"1.2.3+45": "1.2.3+45", "2.0.0": "2.0.0+0", "3": "3.0.0+0", "255.255.65535+4294967295": "255.255.65535+4294967295"} {
		v, err := ParseVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("%q: %v %v, want %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "1.2.3.4", "256.0.0", "1.2.65536", "1.2.3+x", "1.2.3-rc.1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestHugeDeclaredSizesAreRefusedWithoutReading: a header that claims a 4 GiB payload
// and 64 KiB of protected TLVs in a 64-byte file is refused before anything past the
// file is read.
func TestHugeDeclaredSizesAreRefusedWithoutReading(t *testing.T) {
	data := readVector(t, "ed25519-basic.bin")[:64]
	data = bytes.Clone(data)
	data[12], data[13], data[14], data[15] = 0xff, 0xff, 0xff, 0xff
	data[10], data[11] = 0xff, 0xff
	r := &boundedReader{data: data}
	if _, err := Parse(r, int64(len(data))); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Parse: %v, want ErrTruncated", err)
	}
	if r.past {
		t.Fatal("Parse read beyond the size it was given")
	}
}

// boundedReader records any read past its data.
type boundedReader struct {
	data []byte
	past bool
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(b.data)) {
		b.past = true
	}
	return bytes.NewReader(b.data).ReadAt(p, off)
}

// TestTruncationAtEveryByteIsRefusedWithoutReadingPastTheEnd cuts the baseline image at
// every length before its TLV area ends.
func TestTruncationAtEveryByteIsRefusedWithoutReadingPastTheEnd(t *testing.T) {
	data := readVector(t, "ed25519-basic.bin")
	for n := 0; n < len(data); n++ {
		r := &boundedReader{data: data[:n]}
		_, err := Parse(r, int64(n))
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", n, err)
		}
		if r.past {
			t.Fatalf("cut at %d: read past the end", n)
		}
	}
}

func TestSecurityCounterOutsideTheProtectedAreaIsRefused(t *testing.T) {
	// Move SEC_CNT into the unprotected area by building it as a custom unprotected TLV:
	// take the unsigned image and append a SEC_CNT TLV to its TLV area.
	img, err := Build(readVector(t, "input/payload-3000.raw"), BuildOptions{Version: Version{1, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	img = append(img, 0x50, 0x00, 0x04, 0x00, 9, 0, 0, 0)
	tlvOff := 0x200 + 3000
	img[tlvOff+2] += 8
	if _, err := Parse(bytes.NewReader(img), int64(len(img))); !errors.Is(err, ErrFormat) {
		t.Fatalf("Parse: %v, want ErrFormat", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"ed25519-basic.bin", "ed25519-custom-tlv.bin", "ed25519-dependency.bin", "unsigned-hash-only.bin",
		"fail-tlv-truncated.bin", "fail-header-magic.bin", "ecdsa-p256-pubkey-full.bin"} {
		f.Add(readVector(f, name))
	}
	pub := loadPublic(f, "ed25519")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &boundedReader{data: data}
		img, err := Parse(r, int64(len(data)))
		if r.past {
			t.Fatal("Parse read past the end")
		}
		if err != nil {
			if img != nil {
				t.Fatal("image with an error")
			}
			return
		}
		if img.TLVEnd > int64(len(data)) || img.HashedEnd() > img.TLVOffset || len(img.ImageHash) == 0 {
			t.Fatalf("bounds: %+v", img)
		}
		_ = img.VerifyHash(r)
		_ = img.VerifySignature(r, pub)
		_, _ = img.Trailer(r)
		if r.past {
			t.Fatal("read past the end")
		}
	})
}
