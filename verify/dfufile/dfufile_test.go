package dfufile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// vectors is the dfu-util 0.11 test set (testdata/dfu, see its README).
const vectors = "../../testdata/dfu"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type wantElement struct {
	addr, size uint32
	off        int64
	sha        string // prefix of the data's SHA-256 as the README gives it
}

type wantTarget struct {
	alt      uint8
	name     string
	off      int64
	size     uint32
	elements []wantElement
}

var dfuVectors = []struct {
	file      string
	size      int64
	suffix    Suffix
	err       error
	imageSize uint32
	targets   []wantTarget // nil: plain DFU
	payload   string       // plain DFU: SHA-256 of the bytes before the suffix
}{
	{file: "suffix-0483-df11.dfu", size: 5016, suffix: Suffix{0x0200, 0xdf11, 0x0483, 0x0100, 16, 0x220291f0},
		payload: "b5eaa690b0bc3b91b693d582ba42e0a4c5eabd8d8d5b3d7bd0e8e602ec950c06"},
	{file: "fail-suffix-crc.dfu", size: 5016, err: ErrCRC},
	{file: "dfuse-2elements.dfu", size: 6913, suffix: Suffix{0, 0xdf11, 0x0483, 0x011a, 16, 0xe25da9da}, imageSize: 6913,
		targets: []wantTarget{{0, "ST...", 0x0b, 6612, []wantElement{
			{0x08000000, 4096, 0x125, "470d1b89fc75293c6793ec18ae42d29a06e47c26fde262729975d35de66bc5b1"},
			{0x08010000, 2500, 0x112d, "e6b121d1b91cf5237d0d1fdda08c7632797c608207c0a21fddb2bb8ec590816b"}}}}},
	{file: "dfuse-2targets.dfu", size: 4703, suffix: Suffix{0, 0xdf11, 0x0483, 0x011a, 16, 0x8d014b18}, imageSize: 4703,
		targets: []wantTarget{
			{0, "ST...", 0x0b, 4104, []wantElement{{0x08000000, 4096, 0x125, "470d1b89fc75293c6793ec18ae42d29a06e47c26fde262729975d35de66bc5b1"}}},
			{1, "ST...", 0x1125, 24, []wantElement{{0x1fffc000, 16, 0x123f, "91debbb9ec1a91e60b9ff8c36e7d5b8daa411c4e8963deb8f1356d649fa4cffa"}}}}},
}

func TestEveryDfuUtilVectorReadsAsTheReadmeSays(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(vectors, "*.dfu"))
	if len(files) != len(dfuVectors) {
		t.Errorf("%d .dfu files, %d described here: a vector is untested", len(files), len(dfuVectors))
	}
	for _, v := range dfuVectors {
		t.Run(v.file, func(t *testing.T) {
			data := readVector(t, v.file)
			if int64(len(data)) != v.size {
				t.Fatalf("size %d, README says %d", len(data), v.size)
			}
			r := bytes.NewReader(data)
			f, err := Parse(r, v.size)
			if v.err != nil {
				if !errors.Is(err, v.err) {
					t.Fatalf("Parse: %v, want %v", err, v.err)
				}
				t.Logf("refused as expected: %v", err)
				if HasSuffix(r, v.size) {
					t.Error("HasSuffix true for a file whose CRC does not match")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !HasSuffix(r, v.size) {
				t.Error("HasSuffix false")
			}
			if f.Suffix != v.suffix {
				t.Errorf("suffix %+v, want %+v", f.Suffix, v.suffix)
			}
			if f.PayloadSize != v.size-16 {
				t.Errorf("payload size %d", f.PayloadSize)
			}
			if v.targets == nil {
				if f.DfuSe != nil {
					t.Fatalf("DfuSe %+v on a plain file", f.DfuSe)
				}
				h := sha256.New()
				io.Copy(h, f.Payload(r))
				if got := hex.EncodeToString(h.Sum(nil)); got != v.payload {
					t.Errorf("payload sha256 %s, want %s", got, v.payload)
				}
				return
			}
			if f.DfuSe == nil {
				t.Fatal("no DfuSe body")
			}
			if f.DfuSe.ImageSize != v.imageSize || f.DfuSe.Version != 1 {
				t.Errorf("prefix %+v", f.DfuSe)
			}
			if len(f.DfuSe.Targets) != len(v.targets) {
				t.Fatalf("%d targets, want %d", len(f.DfuSe.Targets), len(v.targets))
			}
			for i, wt := range v.targets {
				gt := f.DfuSe.Targets[i]
				if gt.Alt != wt.alt || gt.Name != wt.name || !gt.Named || gt.Offset != wt.off || gt.Size != wt.size || len(gt.Elements) != len(wt.elements) {
					t.Fatalf("target %d %+v, want %+v", i, gt, wt)
				}
				for j, we := range wt.elements {
					ge := gt.Elements[j]
					h := sha256.New()
					io.Copy(h, ge.Reader(r))
					if ge.Address != we.addr || ge.Size != we.size || ge.Offset != we.off || hex.EncodeToString(h.Sum(nil)) != we.sha {
						t.Errorf("target %d element %d %+v sha %x, want %+v", i, j, ge, h.Sum(nil), we)
					}
				}
			}
		})
	}
}

// TestAppendSuffixWritesWhatDfuSuffixWrote rebuilds suffix-0483-df11.dfu from its input.
func TestAppendSuffixWritesWhatDfuSuffixWrote(t *testing.T) {
	got := AppendSuffix(readVector(t, "input/payload-5000.raw"), Suffix{BcdDevice: 0x0200, IDProduct: 0xdf11, IDVendor: 0x0483})
	if !bytes.Equal(got, readVector(t, "suffix-0483-df11.dfu")) {
		t.Fatalf("suffix % x, dfu-suffix wrote % x", got[len(got)-16:], readVector(t, "suffix-0483-df11.dfu")[5000:])
	}
}

// TestBuildDfuSeWritesWhatDfusePackWrote rebuilds both DfuSe vectors from their inputs.
func TestBuildDfuSeWritesWhatDfusePackWrote(t *testing.T) {
	e0, e1, opt := readVector(t, "input/element0-4096.raw"), readVector(t, "input/element1-2500.raw"), readVector(t, "input/optbytes-16.raw")
	s := Suffix{IDVendor: 0x0483, IDProduct: 0xdf11}
	for file, targets := range map[string][]TargetImage{
		"dfuse-2elements.dfu": {{Alt: 0, Blocks: []Block{{0x08000000, e0}, {0x08010000, e1}}}},
		"dfuse-2targets.dfu":  {{Alt: 0, Blocks: []Block{{0x08000000, e0}}}, {Alt: 1, Blocks: []Block{{0x1fffc000, opt}}}},
	} {
		got, err := BuildDfuSe(targets, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := readVector(t, file); !bytes.Equal(got, want) {
			t.Errorf("%s: built %d bytes, dfuse-pack wrote %d", file, len(got), len(want))
		}
	}
}

// TestDfuSeInconsistenciesAreRefused edits a valid DfuSe file (fixing the CRC each time,
// so only the edited field is wrong) and expects each edit to be refused.
func TestDfuSeInconsistenciesAreRefused(t *testing.T) {
	orig := readVector(t, "dfuse-2targets.dfu")
	le := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	resign := func(b []byte) []byte {
		s := Suffix{BcdDevice: 0, IDProduct: 0xdf11, IDVendor: 0x0483, BcdDFU: BcdDfuSe}
		return AppendSuffix(b[:len(b)-16], s)
	}
	cases := map[string]func([]byte) []byte{
		"DFUImageSize off by one":  func(b []byte) []byte { le(b, 6, 4702+2); return b },
		"three targets claimed":    func(b []byte) []byte { b[10] = 3; return b },
		"one target claimed":       func(b []byte) []byte { b[10] = 1; return b },
		"dwTargetSize too large":   func(b []byte) []byte { le(b, 0x0b+266, 4105); return b },
		"dwTargetSize too small":   func(b []byte) []byte { le(b, 0x0b+266, 4103); return b },
		"element runs past target": func(b []byte) []byte { le(b, 0x11d+4, 4097); return b },
		"two elements claimed":     func(b []byte) []byte { le(b, 0x0b+270, 2); return b },
		"billions of elements":     func(b []byte) []byte { le(b, 0x0b+270, 0xffffffff); return b },
		"target signature":         func(b []byte) []byte { b[0x1125] = 't'; return b },
		"bVersion 2":               func(b []byte) []byte { b[5] = 2; return b },
		"trailing byte before suffix": func(b []byte) []byte {
			b = append(b[:len(b)-16:len(b)-16], append([]byte{0}, b[len(b)-16:]...)...)
			le(b, 6, uint32(len(b)))
			return b
		},
		"plain bcdDFU on a DfuSe file": func(b []byte) []byte {
			return AppendSuffix(b[:len(b)-16], Suffix{IDProduct: 0xdf11, IDVendor: 0x0483, BcdDFU: BcdDFU})
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			b := edit(bytes.Clone(orig))
			if name != "plain bcdDFU on a DfuSe file" {
				b = resign(b)
			}
			_, err := Parse(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Parse: %v, want a format or truncation error", err)
			}
			t.Log(err)
		})
	}
	// Without the edits the same re-signing yields a file that parses: the cases above
	// fail for their edit, not for the re-signing.
	if _, err := Parse(bytes.NewReader(resign(bytes.Clone(orig))), int64(len(orig))); err != nil {
		t.Fatal(err)
	}
}

// TestImageSizeWithoutTheSuffixIsAccepted: ST's own tools count DFUImageSize without the
// suffix, dfuse-pack with it; a file from either must read.
func TestImageSizeWithoutTheSuffixIsAccepted(t *testing.T) {
	b := bytes.Clone(readVector(t, "dfuse-2elements.dfu"))
	n := uint32(len(b) - 16)
	b[6], b[7], b[8], b[9] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	b = AppendSuffix(b[:len(b)-16], Suffix{IDProduct: 0xdf11, IDVendor: 0x0483, BcdDFU: BcdDfuSe})
	if _, err := Parse(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func TestFilesWithoutASuffixAreNotDFU(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("short"), readVector(t, "input/payload-5000.raw")} {
		if _, err := Parse(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNoSuffix) {
			t.Errorf("%d bytes: %v, want ErrNoSuffix", len(b), err)
		}
		if HasSuffix(bytes.NewReader(b), int64(len(b))) {
			t.Errorf("%d bytes: HasSuffix", len(b))
		}
	}
}

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

func FuzzParse(f *testing.F) {
	for _, name := range []string{"suffix-0483-df11.dfu", "fail-suffix-crc.dfu", "dfuse-2elements.dfu", "dfuse-2targets.dfu"} {
		f.Add(readVector(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Most mutations break the CRC; fix it half the time so the DfuSe walk is reached.
		if len(data) >= SuffixLen && len(data)%2 == 0 {
			data = AppendSuffix(data[:len(data)-16], Suffix{
				BcdDevice: uint16(data[len(data)-16]), IDProduct: 0xdf11, IDVendor: 0x0483, BcdDFU: uint16(data[len(data)-10]) | uint16(data[len(data)-9])<<8,
			})
		}
		r := &boundedReader{data: data}
		file, err := Parse(r, int64(len(data)))
		if r.past {
			t.Fatal("read past the end")
		}
		if err != nil {
			return
		}
		if file.PayloadSize < 0 || file.PayloadSize > int64(len(data)) {
			t.Fatalf("payload size %d of %d", file.PayloadSize, len(data))
		}
		if file.DfuSe != nil {
			var sum int64 = prefixLen
			for _, tg := range file.DfuSe.Targets {
				sum += targetPrefixLen + int64(tg.Size)
				for _, e := range tg.Elements {
					if e.Offset+int64(e.Size) > file.PayloadSize {
						t.Fatalf("element %+v beyond the body", e)
					}
				}
			}
			if sum != file.PayloadSize {
				t.Fatal(fmt.Sprintf("targets account for %d of %d bytes", sum, file.PayloadSize))
			}
		}
	})
}
