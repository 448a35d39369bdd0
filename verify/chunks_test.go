package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
)

func chunkCustom(t testing.TB, c *Chunks) []byte {
	b, err := json.Marshal(map[string]any{CustomKey: fxMeta(), ChunksKey: c})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChunkHashesRoundTripThroughTheCustomField(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*MinChunkSize+100)/16)
	h := NewChunkHasher(MinChunkSize)
	// Odd write sizes cross chunk boundaries in the middle of a write.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 7777)
		h.Write(rest[:n])
		rest = rest[n:]
	}
	c, err := h.Chunks()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SHA256) != 4 {
		t.Fatalf("%d chunks for %d bytes in chunks of %d; want 4", len(c.SHA256), len(data), MinChunkSize)
	}
	for i := range c.SHA256 {
		off, n := c.Span(i, int64(len(data)))
		if sha256.Sum256(data[off:off+n]) != c.SHA256[i] {
			t.Fatalf("chunk %d hash differs from the SHA-256 of bytes %d..%d", i, off, off+n)
		}
	}
	got, err := ParseChunks(chunkCustom(t, c), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != c.Size || len(got.SHA256) != len(c.SHA256) || got.SHA256[3] != c.SHA256[3] {
		t.Fatalf("parsed %+v; want what was written", got)
	}
}

func TestTargetsWithoutChunkHashesAreWholeFileOnly(t *testing.T) {
	for _, custom := range []string{"", `{"fieldflash":{}}`, `{"fieldflash-chunks":null}`} {
		if c, err := ParseChunks([]byte(custom), 10); c != nil || err != nil {
			t.Errorf("ParseChunks(%q) = %v, %v; want none and no error", custom, c, err)
		}
	}
}

func TestMalformedChunkHashesAreRefusedWithTheReason(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, custom string
		length       int64
		want         string
	}{
		{"not an object", `[1]`, 10, "not a JSON object"},
		{"size not a power of two", `{"fieldflash-chunks":{"size":100000,"sha256":["` + good + `"]}}`, 10, "power of two"},
		{"size too small", `{"fieldflash-chunks":{"size":1024,"sha256":["` + good + `"]}}`, 10, "power of two"},
		{"too few hashes", `{"fieldflash-chunks":{"size":65536,"sha256":["` + good + `"]}}`, 65537, "2 chunks"},
		{"too many hashes", `{"fieldflash-chunks":{"size":65536,"sha256":["` + good + `","` + good + `"]}}`, 10, "1 chunks"},
		{"upper-case hex", `{"fieldflash-chunks":{"size":65536,"sha256":["` + strings.ToUpper(good) + `"]}}`, 10, "lowercase hex"},
		{"short hash", `{"fieldflash-chunks":{"size":65536,"sha256":["abcd"]}}`, 10, "64 lowercase"},
		{"zero length", `{"fieldflash-chunks":{"size":65536,"sha256":[]}}`, 0, "length 0"},
		{"wrong type", `{"fieldflash-chunks":{"size":"big"}}`, 10, "fieldflash-chunks"},
		{"too many chunks", `{"fieldflash-chunks":{"size":65536,"sha256":[]}}`, 65536 * (MaxChunkCount + 1), "more than"},
	} {
		_, err := ParseChunks([]byte(tc.custom), tc.length)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want one that says %q", tc.name, err, tc.want)
		}
	}
}

func TestWritersKeepTheChunkListShortWhateverTheSize(t *testing.T) {
	for _, tc := range []struct{ length, size int64 }{
		{1, 1 << 20}, {256 << 20, 1 << 20}, {1 << 30, 1 << 20}, {1<<30 + 1, 2 << 20}, {64 << 30, 64 << 20},
	} {
		size := ChunkSizeFor(tc.length)
		if size != tc.size {
			t.Errorf("ChunkSizeFor(%d) = %d; want %d", tc.length, size, tc.size)
		}
		if n := ChunkCount(tc.length, size); n > WriterMaxChunks {
			t.Errorf("length %d: %d chunks; want at most %d", tc.length, n, WriterMaxChunks)
		}
	}
}

// FuzzChunks feeds a target's custom object, as a repository serves it, through the
// chunk-hash parser: it may refuse, never panic, and what it accepts is consistent with
// the length.
func FuzzChunks(f *testing.F) {
	h := NewChunkHasher(MinChunkSize)
	h.Write(make([]byte, MinChunkSize+1))
	c, _ := h.Chunks()
	f.Add(chunkCustom(f, c), int64(MinChunkSize+1))
	f.Add([]byte(`{"fieldflash-chunks":{"size":65536,"sha256":["`+strings.Repeat("0", 64)+`"]}}`), int64(5))
	f.Add([]byte(`{"fieldflash-chunks":{"size":9223372036854775807,"sha256":[]}}`), int64(-1))
	f.Fuzz(func(t *testing.T, custom []byte, length int64) {
		c, err := ParseChunks(custom, length)
		if err != nil || c == nil {
			return
		}
		if int64(len(c.SHA256)) != ChunkCount(length, c.Size) {
			t.Fatalf("accepted %d hashes for length %d, size %d", len(c.SHA256), length, c.Size)
		}
		last := len(c.SHA256) - 1
		if off, n := c.Span(last, length); n <= 0 || off+n != length {
			t.Fatalf("last chunk spans %d+%d, want it to end at %d", off, n, length)
		}
	})
}
