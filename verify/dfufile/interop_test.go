package dfufile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// These tests run dfu-util's own tools (Debian package dfu-util) against this package in
// both directions. They skip, saying why, where the tools are not installed.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found in PATH (install the dfu-util package to run this interop test): %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// testPayload is a payload that is not one of the upstream vectors in testdata/, so the interop is not
// only about files that were already known to agree.
func testPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}

func TestDfuSuffixAddsWhatParseReads(t *testing.T) {
	tool := needTool(t, "dfu-suffix")
	path := filepath.Join(t.TempDir(), "fw.bin")
	payload := testPayload(12345, 0x5a)
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, tool, "-v", "0x1209", "-p", "0x2002", "-d", "0x0107", "-a", path); err != nil {
		t.Fatalf("dfu-suffix -a: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(path)
	f, err := Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := Suffix{BcdDevice: 0x0107, IDProduct: 0x2002, IDVendor: 0x1209, BcdDFU: 0x0100, Length: 16, CRC: f.Suffix.CRC}
	if f.Suffix != want || f.PayloadSize != int64(len(payload)) || !bytes.Equal(data[:f.PayloadSize], payload) {
		t.Fatalf("suffix %+v payload %d, want %+v %d", f.Suffix, f.PayloadSize, want, len(payload))
	}
	if !bytes.Equal(AppendSuffix(payload, want), data) {
		t.Error("AppendSuffix differs from dfu-suffix for the same fields")
	}
}

func TestDfuSuffixChecksWhatAppendSuffixWrote(t *testing.T) {
	tool := needTool(t, "dfu-suffix")
	path := filepath.Join(t.TempDir(), "fw.dfu")
	data := AppendSuffix(testPayload(7777, 0x11), Suffix{BcdDevice: 0x0301, IDProduct: 0xabcd, IDVendor: 0x1234})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, tool, "-c", path)
	if err != nil {
		t.Fatalf("dfu-suffix -c refused our file: %v\n%s", err, out)
	}
	for _, s := range []string{"0x0301", "0xABCD", "0x1234", "0x0100"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(s)) {
			t.Errorf("dfu-suffix -c output lacks %s:\n%s", s, out)
		}
	}
	// The negative: one flipped payload byte and dfu-suffix must refuse too.
	data[100] ^= 1
	os.WriteFile(path, data, 0o644)
	if out, err := run(t, tool, "-c", path); err == nil {
		t.Errorf("dfu-suffix -c accepted a file with a bad CRC:\n%s", out)
	}
}

func TestDfusePackBuildsWhatParseReads(t *testing.T) {
	tool := needTool(t, "dfuse-pack")
	dir := t.TempDir()
	a, b, c := testPayload(3001, 1), testPayload(17, 2), testPayload(1024, 3)
	for name, d := range map[string][]byte{"a.bin": a, "b.bin": b, "c.bin": c} {
		os.WriteFile(filepath.Join(dir, name), d, 0o644)
	}
	out := filepath.Join(dir, "out.dfu")
	if o, err := run(t, tool, "-D", "0x1209:0x2002",
		"-b", "0x08004000@0:"+filepath.Join(dir, "a.bin"),
		"-b", "0x08040000@0:"+filepath.Join(dir, "b.bin"),
		"-b", "0x90000000@2:"+filepath.Join(dir, "c.bin"), out); err != nil {
		t.Fatalf("dfuse-pack: %v\n%s", err, o)
	}
	data, _ := os.ReadFile(out)
	r := bytes.NewReader(data)
	f, err := Parse(r, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Suffix.IDVendor != 0x1209 || f.Suffix.IDProduct != 0x2002 || f.DfuSe == nil || len(f.DfuSe.Targets) != 2 {
		t.Fatalf("%+v %+v", f.Suffix, f.DfuSe)
	}
	type blk struct {
		alt  uint8
		addr uint32
		data []byte
	}
	var got []blk
	for _, tg := range f.DfuSe.Targets {
		for _, e := range tg.Elements {
			d := make([]byte, e.Size)
			e.Reader(r).Read(d)
			got = append(got, blk{tg.Alt, e.Address, d})
		}
	}
	want := []blk{{0, 0x08004000, a}, {0, 0x08040000, b}, {2, 0x90000000, c}}
	if len(got) != len(want) {
		t.Fatalf("%d elements, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].alt != want[i].alt || got[i].addr != want[i].addr || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("element %d: alt %d 0x%08x %d bytes, want alt %d 0x%08x %d bytes", i, got[i].alt, got[i].addr, len(got[i].data), want[i].alt, want[i].addr, len(want[i].data))
		}
	}
	built, err := BuildDfuSe([]TargetImage{
		{Alt: 0, Blocks: []Block{{0x08004000, a}, {0x08040000, b}}},
		{Alt: 2, Blocks: []Block{{0x90000000, c}}},
	}, Suffix{IDVendor: 0x1209, IDProduct: 0x2002})
	if err != nil || !bytes.Equal(built, data) {
		t.Errorf("BuildDfuSe differs from dfuse-pack for the same blocks (err %v)", err)
	}
}

func TestDfusePackParsesWhatBuildDfuSeWrote(t *testing.T) {
	tool := needTool(t, "dfuse-pack")
	path := filepath.Join(t.TempDir(), "ours.dfu")
	data, err := BuildDfuSe([]TargetImage{
		{Alt: 0, Name: "Internal Flash", Blocks: []Block{{0x08000000, testPayload(2048, 9)}, {0x08020000, testPayload(5, 8)}}},
		{Alt: 1, Blocks: []Block{{0x1fffc000, testPayload(16, 7)}}},
	}, Suffix{BcdDevice: 0x2200, IDVendor: 0x0483, IDProduct: 0xdf11})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, data, 0o644)
	out, err := run(t, tool, path)
	if err != nil {
		t.Fatalf("dfuse-pack parse: %v\n%s", err, out)
	}
	if strings.Contains(out, "ERROR") {
		t.Fatalf("dfuse-pack reports an error on our file:\n%s", out)
	}
	for _, s := range []string{
		"image size: " + strconv.Itoa(len(data)) + ", targets: 2",
		`alt setting: 0, name: "b'Internal Flash'", size: 2069, elements: 2`,
		"0, address: 0x08000000, size: 2048",
		"1, address: 0x08020000, size: 5",
		`alt setting: 1, name: "b'ST...'", size: 24, elements: 1`,
		"0, address: 0x1fffc000, size: 16",
		"usb: 0483:df11, device: 0x2200, dfu: 0x011a, b'UFD', 16",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("dfuse-pack output lacks %q:\n%s", s, out)
		}
	}
	if sfx := needTool(t, "dfu-suffix"); sfx != "" {
		if out, err := run(t, sfx, "-c", path); err != nil {
			t.Errorf("dfu-suffix -c refused our DfuSe file: %v\n%s", err, out)
		}
	}
}
