package bundle

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader feeds the Reader arbitrary files: it must refuse them with an *Error of a
// known kind, never panic, never hand out a payload that lies outside the file, and never
// allocate what a header merely declares.
func FuzzReader(f *testing.F) {
	f.Add(write(f, sampleContents()))
	f.Add(makeTar(f, withPayload()...))
	seeds, _ := filepath.Glob("../testdata/*.fwb")
	for _, path := range seeds {
		if st, err := os.Stat(path); err != nil || st.Size() > 256<<10 {
			continue // large vectors make slow seeds; their headers are covered by the small ones
		}
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	kinds := map[string]bool{KindTruncated: true, KindTrailingGarbage: true, KindUnsafePath: true, KindLinkEntry: true,
		KindDuplicate: true, KindTooLarge: true, KindFormat: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Limits{MaxMetadataBytes: 1 << 16, MaxPayloadBytes: 1 << 20, MaxEntries: 64, MaxRootVersions: 8, MaxRoles: 8, MaxMetadataTotalBytes: 1 << 18}
		r := NewReader(bytes.NewReader(data), int64(len(data)), l)
		check := func(err error) {
			var be *Error
			if !errors.As(err, &be) || !kinds[be.Kind] {
				t.Fatalf("error %v (%T) is not a refusal of a known kind", err, err)
			}
		}
		m, err := r.Metadata()
		if err != nil {
			check(err)
			return
		}
		if m.Timestamp == nil || m.Snapshot == nil || m.Targets == nil || len(m.Roots) == 0 {
			t.Fatal("Metadata succeeded without the required files")
		}
		for {
			p, err := r.NextPayload()
			if err == io.EOF {
				return
			}
			if err != nil {
				check(err)
				return
			}
			if p.Offset < 0 || p.Size < 0 || p.Offset+p.Size > int64(len(data)) {
				t.Fatalf("payload %s at %d+%d lies outside the %d-byte file", p.SHA256, p.Offset, p.Size, len(data))
			}
			b, err := io.ReadAll(p.R)
			if err != nil {
				check(err)
				return
			}
			if !bytes.Equal(b, data[p.Offset:p.Offset+p.Size]) {
				t.Fatalf("payload %s: R does not yield the bytes at Offset", p.SHA256)
			}
		}
	})
}
