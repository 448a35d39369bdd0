package bundle

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBundleBuiltWithSystemTarFollowingTheSpec assembles a bundle the way
// docs/bundle-format.md tells a release engineer without fieldflash to do it, with GNU tar
// and an explicit file list, and reads it back.
func TestBundleBuiltWithSystemTarFollowingTheSpec(t *testing.T) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar binary on PATH: this test checks the GNU tar recipe of docs/bundle-format.md")
	}
	if out, err := exec.Command(tarPath, "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		t.Skipf("tar on PATH is not GNU tar (%q): the recipe in docs/bundle-format.md uses GNU tar options", firstLine(out))
	}
	c := sampleContents()
	dir := filepath.Join(t.TempDir(), "staging")
	payloads := stage(t, dir, c)

	// Run the recipe exactly as the spec prints it: from the folder holding staging/.
	script := codeBlock(t, "sh")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = filepath.Dir(dir)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recipe of docs/bundle-format.md failed: %v\n%s\n%s", err, script, msg)
	}
	out := filepath.Join(filepath.Dir(dir), "acme-gw-1.0.0.fwb")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, got, _, err := readAll(data, Limits{})
	if err != nil {
		t.Fatalf("the Reader refuses a bundle built by the spec's recipe: %v", err)
	}
	if len(m.Roots) != len(c.Roots) || !bytes.Equal(m.Targets, c.Targets) || !bytes.Equal(m.Delegated["acme-gw"], c.Delegated["acme-gw"]) {
		t.Errorf("metadata read back differs: %v", m)
	}
	for h, want := range payloads {
		if !bytes.Equal(got[h], want) {
			t.Errorf("payload %s differs", h)
		}
	}
	// The recipe gives fieldflash's own bytes; GNU tar only adds zero padding to its 10240-byte record.
	own := write(t, c)
	if len(data) < len(own) || !bytes.Equal(data[:len(own)], own) || !bytes.Equal(data[len(own):], make([]byte, len(data)-len(own))) {
		t.Errorf("GNU tar's bundle (%d bytes) is not bundle.Write's (%d bytes) plus zero padding", len(data), len(own))
	}
}

// codeBlock is the first code block in language lang of section 6 of docs/bundle-format.md.
func codeBlock(t *testing.T, lang string) string {
	doc, err := os.ReadFile("../../docs/bundle-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## 6.")
	if !ok {
		t.Fatal("docs/bundle-format.md has no section 6")
	}
	section, _, _ = strings.Cut(section, "\n## 6a.")
	_, block, ok := strings.Cut(section, "```"+lang+"\n")
	if !ok {
		t.Fatalf("section 6 of docs/bundle-format.md has no %s block", lang)
	}
	script, _, _ := strings.Cut(block, "```")
	return script
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// TestBundleBuiltWithPythonTarfileFollowingTheSpec runs the Python recipe of
// docs/bundle-format.md, section 6, and reads its bundle back: the same contents, and the
// same bytes as bundle.Write's except the fields the spec names (devmajor and devminor as
// NUL bytes, so other checksums) and the zero padding.
func TestBundleBuiltWithPythonTarfileFollowingTheSpec(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH: this test runs the Python recipe of docs/bundle-format.md")
	}
	c := sampleContents()
	dir := filepath.Join(t.TempDir(), "staging")
	stage(t, dir, c)
	script := codeBlock(t, "python")
	cmd := exec.Command(python, "-c", script)
	cmd.Dir = filepath.Dir(dir)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Python recipe of docs/bundle-format.md failed: %v\n%s\n%s", err, script, msg)
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "acme-gw-1.0.0.fwb"))
	if err != nil {
		t.Fatal(err)
	}
	m, _, _, err := readAll(data, Limits{})
	if err != nil {
		t.Fatalf("the Reader refuses a bundle built by the spec's Python recipe: %v", err)
	}
	if !bytes.Equal(m.Targets, c.Targets) || len(m.Roots) != len(c.Roots) {
		t.Errorf("metadata read back differs")
	}
	own := write(t, c)
	if len(data) < len(own) || len(data)%10240 != 0 || !bytes.Equal(data[len(own):], make([]byte, len(data)-len(own))) {
		t.Fatalf("Python's bundle (%d bytes) is not %d bytes plus zero padding to a 10240-byte record", len(data), len(own))
	}
	got := bytes.Clone(data[:len(own)])
	for off := 0; off < len(own); {
		hdr := own[off : off+blockSize]
		if bytes.Equal(hdr, make([]byte, blockSize)) {
			break
		}
		size, _ := strconv.ParseInt(strings.TrimRight(string(hdr[124:135]), "\x00"), 8, 64)
		if !bytes.Equal(got[off+329:off+345], make([]byte, 16)) {
			t.Fatalf("header at %d: Python's devmajor/devminor are %q, the spec says NUL bytes", off, got[off+329:off+345])
		}
		copy(got[off+329:off+345], hdr[329:345]) // the two fields the spec says differ
		copy(got[off+148:off+156], hdr[148:156]) // and so the checksum
		off += blockSize + int(size+blockSize-1)/blockSize*blockSize
	}
	if !bytes.Equal(got, own) {
		t.Errorf("apart from devmajor, devminor and the checksum, Python's bundle differs from bundle.Write's")
	}
}

// stage lays c out as the spec's staging folder (ten roots, so that a recipe's numeric
// sort matters: 10 after 9, not after 1) and returns the payloads by hash.
func stage(t *testing.T, dir string, c *Contents) map[string][]byte {
	t.Helper()
	put := func(name string, data []byte) {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil { // --mode must override this
			t.Fatal(err)
		}
	}
	// Ten roots, so that the recipe's numeric sort matters (10 after 9, not after 1).
	for v := int64(1); v <= 10; v++ {
		c.Roots[v] = []byte(`{"root":` + strconv.FormatInt(v, 10) + `}`)
	}
	for v, b := range c.Roots {
		put("metadata/"+strconv.FormatInt(v, 10)+".root.json", b)
	}
	put("metadata/timestamp.json", c.Timestamp)
	put("metadata/snapshot.json", c.Snapshot)
	put("metadata/targets.json", c.Targets)
	for r, b := range c.Delegated {
		put("metadata/"+r+".json", b)
	}
	payloads := map[string][]byte{}
	for _, p := range c.Payloads {
		rc, _ := p.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		payloads[p.SHA256] = b.Bytes()
		put("targets/"+p.SHA256, b.Bytes())
	}
	return payloads
}
