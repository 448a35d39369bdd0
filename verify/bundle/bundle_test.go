package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// sampleContents is a small bundle: two roots, one delegated role, two payloads.
func sampleContents() *Contents {
	p1 := []byte("firmware one, the application image")
	p2 := bytes.Repeat([]byte{0xa5, 0x5a, 0x00}, 700) // spans several tar blocks
	return &Contents{
		Roots:     map[int64][]byte{2: []byte(`{"root":2}`), 1: []byte(`{"root":1}`)},
		Timestamp: []byte(`{"timestamp":1}`),
		Snapshot:  []byte(`{"snapshot":1}`),
		Targets:   []byte(`{"targets":1}`),
		Delegated: map[string][]byte{"zeta": []byte(`{"zeta":1}`), "acme-gw": []byte(`{"acme-gw":1}`)},
		Payloads:  []PayloadSource{source(p1), source(p2)},
	}
}

func source(data []byte) PayloadSource {
	sum := sha256.Sum256(data)
	return PayloadSource{
		SHA256: hex.EncodeToString(sum[:]),
		Size:   int64(len(data)),
		Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

func write(t testing.TB, c *Contents) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, c); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestSameContentsGiveTheSameBundleBytes(t *testing.T) {
	a := write(t, sampleContents())
	c := sampleContents()
	c.Payloads[0], c.Payloads[1] = c.Payloads[1], c.Payloads[0] // order given must not matter
	b := write(t, c)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same contents differ")
	}
	// The archive is in canonical order with canonical headers.
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) || h.Typeflag != tar.TypeReg {
			t.Errorf("%s: header %+v is not canonical", h.Name, h)
		}
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want ustar", h.Name, h.Format)
		}
	}
	p := sampleContents().Payloads
	first, second := p[0].SHA256, p[1].SHA256
	if first > second {
		first, second = second, first
	}
	want := []string{
		"metadata/1.root.json", "metadata/2.root.json", "metadata/timestamp.json", "metadata/snapshot.json",
		"metadata/targets.json", "metadata/acme-gw.json", "metadata/zeta.json", "targets/" + first, "targets/" + second,
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries\n got %v\nwant %v", names, want)
	}
	if len(a)%blockSize != 0 || !bytes.Equal(a[len(a)-1024:], make([]byte, 1024)) {
		t.Error("archive does not end with the two-block end-of-archive marker")
	}
}

func TestWriteRefusesAPayloadThatIsNotWhatWasSigned(t *testing.T) {
	data := []byte("the image that was signed")
	for name, mutate := range map[string]func(*PayloadSource){
		"changed byte": func(p *PayloadSource) {
			p.Open = func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader([]byte("the image that was signeD"))), nil
			}
		},
		"shorter": func(p *PayloadSource) { p.Size++ },
		"longer":  func(p *PayloadSource) { p.Size-- },
		"bad hex": func(p *PayloadSource) { p.SHA256 = strings.ToUpper(p.SHA256) },
	} {
		t.Run(name, func(t *testing.T) {
			c := sampleContents()
			p := source(data)
			mutate(&p)
			c.Payloads = []PayloadSource{p}
			if err := Write(io.Discard, c); err == nil {
				t.Fatal("Write accepted a payload that does not match its size and hash")
			}
		})
	}
}

func TestWriteRefusesBadRoleNamesAndMissingMetadata(t *testing.T) {
	for name, mutate := range map[string]func(*Contents){
		"slash in role":   func(c *Contents) { c.Delegated["a/b"] = []byte("{}") },
		"dot-dot role":    func(c *Contents) { c.Delegated[".."] = []byte("{}") },
		"reserved role":   func(c *Contents) { c.Delegated["targets"] = []byte("{}") },
		"no roots":        func(c *Contents) { c.Roots = nil },
		"no timestamp":    func(c *Contents) { c.Timestamp = nil },
		"root version 0":  func(c *Contents) { c.Roots[0] = []byte("{}") },
		"same payload 2x": func(c *Contents) { c.Payloads = append(c.Payloads, c.Payloads[0]) },
		"oversized":       func(c *Contents) { c.Targets = make([]byte, DefaultMaxMetadataBytes+1) },
	} {
		t.Run(name, func(t *testing.T) {
			c := sampleContents()
			mutate(c)
			if err := Write(io.Discard, c); err == nil {
				t.Fatal("Write accepted it")
			}
		})
	}
}

// readAll reads a whole bundle and hands back the metadata and payload bytes by hash.
func readAll(data []byte, l Limits) (*Metadata, map[string][]byte, []*Payload, error) {
	r := NewReader(bytes.NewReader(data), int64(len(data)), l)
	m, err := r.Metadata()
	if err != nil {
		return nil, nil, nil, err
	}
	got := map[string][]byte{}
	var ps []*Payload
	for {
		p, err := r.NextPayload()
		if err == io.EOF {
			return m, got, ps, nil
		}
		if err != nil {
			return m, got, ps, err
		}
		b, err := io.ReadAll(p.R)
		if err != nil {
			return m, got, ps, err
		}
		got[p.SHA256] = b
		ps = append(ps, p)
	}
}

func TestReaderGivesBackWhatWriterWrote(t *testing.T) {
	c := sampleContents()
	data := write(t, c)
	m, payloads, ps, err := readAll(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Roots[1]) != `{"root":1}` || string(m.Roots[2]) != `{"root":2}` || len(m.Roots) != 2 {
		t.Errorf("roots %v", m.Roots)
	}
	if string(m.Timestamp) != `{"timestamp":1}` || string(m.Snapshot) != `{"snapshot":1}` || string(m.Targets) != `{"targets":1}` {
		t.Errorf("top-level metadata %q %q %q", m.Timestamp, m.Snapshot, m.Targets)
	}
	if string(m.Delegated["acme-gw"]) != `{"acme-gw":1}` || len(m.Delegated) != 2 {
		t.Errorf("delegated %q", m.Delegated)
	}
	if len(ps) != 2 {
		t.Fatalf("%d payloads, want 2", len(ps))
	}
	for _, p := range ps {
		b := payloads[p.SHA256]
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != p.SHA256 || int64(len(b)) != p.Size {
			t.Errorf("payload %s: read %d bytes hashing to %x", p.SHA256, len(b), sum)
		}
		// Offset is where the bytes really are: archive/tar did not read ahead.
		if !bytes.Equal(data[p.Offset:p.Offset+p.Size], b) {
			t.Errorf("payload %s: Offset %d does not point at its bytes", p.SHA256, p.Offset)
		}
	}
}

func TestReaderSkipsPayloadsNobodyRead(t *testing.T) {
	data := write(t, sampleContents())
	r := NewReader(bytes.NewReader(data), int64(len(data)), Limits{})
	n := 0
	for {
		_, err := r.NextPayload()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d payloads", n)
	}
}

// entry for hand-made archives.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func file(name string, data string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatUSTAR}, data: []byte(data)}
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var payloadData = "app"
var payloadHash = func() string { s := sha256.Sum256([]byte(payloadData)); return hex.EncodeToString(s[:]) }()

func minimal() []tarEntry {
	return []tarEntry{
		file("metadata/1.root.json", "{}"),
		file("metadata/timestamp.json", "{}"),
		file("metadata/snapshot.json", "{}"),
		file("metadata/targets.json", "{}"),
	}
}

func withPayload(extra ...tarEntry) []tarEntry {
	return append(append(minimal(), extra...), file("targets/"+payloadHash, payloadData))
}

func TestReaderAcceptsMetadataInAnyOrderAndFolderEntries(t *testing.T) {
	m := minimal()
	entries := []tarEntry{
		{hdr: tar.Header{Name: "metadata/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatUSTAR}},
		m[3], m[1], file("metadata/acme-gw.json", `{"d":1}`), m[0], m[2],
		{hdr: tar.Header{Name: "targets/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatUSTAR}},
		file("targets/"+payloadHash, payloadData),
	}
	data := makeTar(t, entries...)
	data = append(data, make([]byte, 10240-len(data)%10240)...) // GNU tar's record padding
	meta, payloads, _, err := readAll(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if string(meta.Delegated["acme-gw"]) != `{"d":1}` || string(payloads[payloadHash]) != payloadData {
		t.Fatalf("got %q / %q", meta.Delegated, payloads)
	}
}

func TestReaderRefusesWhatIsNotABundle(t *testing.T) {
	symlink := tarEntry{hdr: tar.Header{Name: "metadata/acme-gw.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777, Format: tar.FormatUSTAR}}
	hardlink := tarEntry{hdr: tar.Header{Name: "targets/" + payloadHash, Typeflag: tar.TypeLink, Linkname: "metadata/targets.json", Format: tar.FormatUSTAR}}
	fifo := tarEntry{hdr: tar.Header{Name: "metadata/x.json", Typeflag: tar.TypeFifo, Format: tar.FormatUSTAR}}
	dev := tarEntry{hdr: tar.Header{Name: "metadata/x.json", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Format: tar.FormatUSTAR}}
	longRole := strings.Repeat("r", 120)
	paxName := tarEntry{hdr: tar.Header{Name: "metadata/" + longRole + ".json", Typeflag: tar.TypeReg, Size: 2, Format: tar.FormatPAX}, data: []byte("{}")}
	gnuName := tarEntry{hdr: tar.Header{Name: "metadata/" + longRole + ".json", Typeflag: tar.TypeReg, Size: 2, Format: tar.FormatGNU}, data: []byte("{}")}
	paxRecords := file("metadata/x.json", "{}")
	paxRecords.hdr.Format = tar.FormatPAX
	paxRecords.hdr.PAXRecords = map[string]string{"comment": "harmless, but pax all the same"}

	good := makeTar(t, withPayload()...)
	cut := func(n int) []byte { return good[:n] }
	payloadOff := int64(bytes.Index(good, []byte(payloadData)))

	cases := []struct {
		name  string
		data  []byte
		l     Limits
		kind  string
		entry string
	}{
		{"absolute path", makeTar(t, withPayload(file("/etc/evil.json", "{}"))...), Limits{}, KindUnsafePath, "/etc/evil.json"},
		{"dot-dot", makeTar(t, withPayload(file("metadata/../../evil.json", "{}"))...), Limits{}, KindUnsafePath, "metadata/../../evil.json"},
		{"dot-dot role", makeTar(t, withPayload(file("metadata/...json", "{}"))...), Limits{}, KindUnsafePath, "metadata/...json"},
		{"outside layout", makeTar(t, withPayload(file("README", "hi"))...), Limits{}, KindUnsafePath, "README"},
		{"dot slash", makeTar(t, withPayload(file("./metadata/x.json", "{}"))...), Limits{}, KindUnsafePath, "./metadata/x.json"},
		{"nested metadata", makeTar(t, withPayload(file("metadata/a/b.json", "{}"))...), Limits{}, KindUnsafePath, "metadata/a/b.json"},
		{"unversioned root", makeTar(t, withPayload(file("metadata/root.json", "{}"))...), Limits{}, KindUnsafePath, "metadata/root.json"},
		{"root version 0", makeTar(t, withPayload(file("metadata/0.root.json", "{}"))...), Limits{}, KindUnsafePath, "metadata/0.root.json"},
		{"role with space", makeTar(t, withPayload(file("metadata/a b.json", "{}"))...), Limits{}, KindUnsafePath, "metadata/a b.json"},
		{"uppercase hex", makeTar(t, append(minimal(), file("targets/"+strings.ToUpper(payloadHash), payloadData))...), Limits{}, KindUnsafePath, "targets/" + strings.ToUpper(payloadHash)},
		{"short hex", makeTar(t, append(minimal(), file("targets/abcd", payloadData))...), Limits{}, KindUnsafePath, "targets/abcd"},
		{"symlink", makeTar(t, withPayload(symlink)...), Limits{}, KindLinkEntry, "metadata/acme-gw.json"},
		{"hardlink", makeTar(t, append(minimal(), hardlink)...), Limits{}, KindLinkEntry, "targets/" + payloadHash},
		{"fifo", makeTar(t, withPayload(fifo)...), Limits{}, KindLinkEntry, "metadata/x.json"},
		{"device", makeTar(t, withPayload(dev)...), Limits{}, KindLinkEntry, "metadata/x.json"},
		{"duplicate metadata", makeTar(t, withPayload(file("metadata/targets.json", `{"evil":1}`))...), Limits{}, KindDuplicate, "metadata/targets.json"},
		{"duplicate payload", makeTar(t, append(withPayload(), file("targets/"+payloadHash, payloadData))...), Limits{}, KindDuplicate, "targets/" + payloadHash},
		{"metadata after payload", makeTar(t, append(withPayload(), file("metadata/late.json", "{}"))...), Limits{}, KindFormat, "metadata/late.json"},
		{"pax long name", makeTar(t, withPayload(paxName)...), Limits{}, KindFormat, paxName.hdr.Name},
		{"pax record", makeTar(t, withPayload(paxRecords)...), Limits{}, KindFormat, "metadata/x.json"},
		{"gnu long name", makeTar(t, withPayload(gnuName)...), Limits{}, KindFormat, gnuName.hdr.Name},
		{"missing targets", makeTar(t, minimal()[:3]...), Limits{}, KindFormat, "metadata/targets.json"},
		{"metadata over limit", makeTar(t, withPayload(file("metadata/big.json", strings.Repeat(" ", 2000)))...), Limits{MaxMetadataBytes: 1000}, KindTooLarge, "metadata/big.json"},
		{"payload over limit", good, Limits{MaxPayloadBytes: 2}, KindTooLarge, "targets/" + payloadHash},
		{"too many entries", good, Limits{MaxEntries: 4}, KindTooLarge, "targets/" + payloadHash},
		{"too many roots", makeTar(t, withPayload(file("metadata/2.root.json", "{}"), file("metadata/3.root.json", "{}"))...), Limits{MaxRootVersions: 2}, KindTooLarge, "metadata/3.root.json"},
		{"too many roles", makeTar(t, withPayload(file("metadata/a.json", "{}"), file("metadata/b.json", "{}"))...), Limits{MaxRoles: 1}, KindTooLarge, "metadata/b.json"},
		{"too much metadata", makeTar(t, withPayload(file("metadata/a.json", strings.Repeat(" ", 600)))...), Limits{MaxMetadataTotalBytes: 500}, KindTooLarge, "metadata/a.json"},
		{"cut in payload", cut(int(payloadOff) + 1), Limits{}, KindTruncated, "targets/" + payloadHash},
		{"cut in header", cut(700), Limits{}, KindTruncated, ""},
		{"cut before end marker", cut(len(good) - 1024), Limits{}, KindTruncated, ""},
		{"half end marker", cut(len(good) - 512), Limits{}, KindTruncated, ""},
		{"cut in end marker", cut(len(good) - 100), Limits{}, KindTruncated, ""},
		{"trailing garbage", append(append([]byte{}, good...), []byte("appended")...), Limits{}, KindTrailingGarbage, ""},
		{"garbage in padding", append(append([]byte{}, good...), append(make([]byte, 4000), 1)...), Limits{}, KindTrailingGarbage, ""},
		{"garbage after one zero block", append(append([]byte{}, good[:len(good)-512]...), bytes.Repeat([]byte{'x'}, 512)...), Limits{}, KindTrailingGarbage, ""},
		{"bad checksum", func() []byte { b := append([]byte{}, good...); b[0] ^= 1; return b }(), Limits{}, KindFormat, ""},
		{"empty file", nil, Limits{}, KindTruncated, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := readAll(c.data, c.l)
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a refusal of kind %s", err, c.kind)
			}
			if be.Kind != c.kind || be.Entry != c.entry {
				t.Fatalf("got kind %s entry %q (%v), want %s %q", be.Kind, be.Entry, err, c.kind, c.entry)
			}
			if be.Entry != "" && !strings.Contains(err.Error(), be.Entry) || !strings.Contains(err.Error(), "; ") {
				t.Errorf("message %q does not name the entry and a next step", err)
			}
		})
	}
}

func TestHugeDeclaredSizeIsRefusedWithoutAllocating(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// GNU headers carry sizes over 8 GiB in base-256; archive/tar reads them in any header.
	if err := tw.WriteHeader(&tar.Header{Name: "metadata/targets.json", Typeflag: tar.TypeReg, Size: 1 << 40, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(`{"signed":`)) // the file is short; do not Close
	data := buf.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(data), int64(len(data)), Limits{}).Metadata()
	runtime.ReadMemStats(&after)
	var be *Error
	if !errors.As(err, &be) || be.Kind != KindTooLarge || be.Entry != "metadata/targets.json" {
		t.Fatalf("got %v, want too-large on metadata/targets.json", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading allocated %d bytes", grew)
	}
	// Same for a payload: refused from the header, nothing read.
	buf.Reset()
	good := makeTar(t, minimal()...)
	buf.Write(good[:len(good)-1024])
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "targets/" + payloadHash, Typeflag: tar.TypeReg, Size: 1 << 40, Format: tar.FormatGNU})
	data = buf.Bytes()
	r := NewReader(bytes.NewReader(data), int64(len(data)), Limits{MaxPayloadBytes: 1 << 30})
	if _, err := r.NextPayload(); !errors.As(err, &be) || be.Kind != KindTooLarge {
		t.Fatalf("payload: got %v, want too-large", err)
	}
	// Within the limit but beyond the file: truncated, decided from the header.
	r = NewReader(bytes.NewReader(data), int64(len(data)), Limits{MaxPayloadBytes: 1 << 41})
	if _, err := r.NextPayload(); !errors.As(err, &be) || be.Kind != KindTruncated {
		t.Fatalf("payload: got %v, want truncated", err)
	}
}

func TestReaderErrorsStay(t *testing.T) {
	good := makeTar(t, withPayload(file("/abs", "x"))...)
	r := NewReader(bytes.NewReader(good), int64(len(good)), Limits{})
	_, err1 := r.Metadata()
	_, err2 := r.NextPayload()
	if err1 == nil || err1 != err2 {
		t.Fatalf("first %v then %v", err1, err2)
	}
}

// readAtRecorder remembers the furthest byte anyone asked for.
type readAtRecorder struct {
	r   io.ReaderAt
	max int64
}

func (a *readAtRecorder) ReadAt(b []byte, off int64) (int, error) {
	n, err := a.r.ReadAt(b, off)
	if end := off + int64(n); end > a.max {
		a.max = end
	}
	return n, err
}

// TestReadingMetadataStopsAtTheFirstPayload: archive/tar, through the counting reader,
// reads the first payload's header and nothing of its data, so the offsets the Reader
// reports are where the data really starts and payloads are never read twice.
func TestReadingMetadataStopsAtTheFirstPayload(t *testing.T) {
	data := write(t, sampleContents())
	rec := &readAtRecorder{r: bytes.NewReader(data)}
	r := NewReader(rec, int64(len(data)), Limits{})
	if _, err := r.Metadata(); err != nil {
		t.Fatal(err)
	}
	p, err := r.NextPayload()
	if err != nil {
		t.Fatal(err)
	}
	if rec.max != p.Offset {
		t.Fatalf("reading the metadata went to byte %d; the first payload's data starts at %d", rec.max, p.Offset)
	}
}
