package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
)

// A target's whole-file hash can only be checked once the last byte has arrived, so a
// mirror that sends one wrong byte early in a gigabyte costs the whole gigabyte. The
// release tool therefore also signs the SHA-256 of every fixed-size chunk of each large
// target, as a custom field next to custom.fieldflash (docs/bundle-format.md, "Chunk
// hashes"). Downloads check each chunk as it completes; the whole-file length and hashes
// are checked as well. Plain TUF clients ignore the field.

// ChunksKey is the key under a target's "custom" object that holds its chunk hashes.
const ChunksKey = "fieldflash-chunks"

// Chunk sizes. A reader accepts any power of two in [MinChunkSize, MaxChunkSize] and at
// most MaxChunkCount chunks; writers use ChunkSizeFor.
const (
	MinChunkSize     = 64 << 10
	MaxChunkSize     = 1 << 30
	DefaultChunkSize = 1 << 20
	MaxChunkCount    = 1 << 16
	// WriterMaxChunks bounds how many hashes a writer lists per target: about 69 KB of
	// JSON, whatever the target's size.
	WriterMaxChunks = 1024
)

// Chunks is the signed list of per-chunk SHA-256s of one target: chunk i covers bytes
// [i*Size, min((i+1)*Size, length)) of the target.
type Chunks struct {
	Size   int64
	SHA256 [][sha256.Size]byte
}

type chunksJSON struct {
	Size   int64    `json:"size"`
	SHA256 []string `json:"sha256"`
}

// MarshalJSON writes {"size": N, "sha256": ["<hex>", ...]}.
func (c *Chunks) MarshalJSON() ([]byte, error) {
	j := chunksJSON{Size: c.Size, SHA256: make([]string, len(c.SHA256))}
	for i, s := range c.SHA256 {
		j.SHA256[i] = hex.EncodeToString(s[:])
	}
	return json.Marshal(j)
}

// ChunkSizeFor is the chunk size a writer uses for a target of length bytes: 1 MiB,
// doubled until the target has at most WriterMaxChunks chunks.
func ChunkSizeFor(length int64) int64 {
	size := int64(DefaultChunkSize)
	for size < MaxChunkSize && (length+size-1)/size > WriterMaxChunks {
		size *= 2
	}
	return size
}

// ChunkCount is how many chunks of size a target of length bytes has.
func ChunkCount(length, size int64) int64 {
	if length <= 0 || size <= 0 {
		return 0
	}
	return (length + size - 1) / size
}

// Span returns where chunk i starts and how long it is, for a target of length bytes.
func (c *Chunks) Span(i int, length int64) (off, n int64) {
	off = int64(i) * c.Size
	return off, min(c.Size, length-off)
}

// ParseChunks reads the chunk hashes from a target's custom object, for a target of length
// bytes. It returns nil and no error when the target carries none (small targets, and
// repositories made by other TUF tools): then only the whole-file hashes can be checked.
func ParseChunks(custom []byte, length int64) (*Chunks, error) {
	if len(custom) == 0 {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(custom, &obj); err != nil {
		return nil, fmt.Errorf("custom is not a JSON object: %v", err)
	}
	raw, ok := obj[ChunksKey]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var j chunksJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("custom.%s: %v", ChunksKey, err)
	}
	if j.Size < MinChunkSize || j.Size > MaxChunkSize || j.Size&(j.Size-1) != 0 {
		return nil, fmt.Errorf("custom.%s: chunk size %d is not a power of two between %d and %d", ChunksKey, j.Size, MinChunkSize, MaxChunkSize)
	}
	if length <= 0 {
		return nil, fmt.Errorf("custom.%s: the target's length %d leaves nothing to chunk", ChunksKey, length)
	}
	want := ChunkCount(length, j.Size)
	if want > MaxChunkCount {
		return nil, fmt.Errorf("custom.%s: %d chunks, more than %d", ChunksKey, want, MaxChunkCount)
	}
	if int64(len(j.SHA256)) != want {
		return nil, fmt.Errorf("custom.%s: %d hashes for a target of %d bytes in chunks of %d, which has %d chunks", ChunksKey, len(j.SHA256), length, j.Size, want)
	}
	c := &Chunks{Size: j.Size, SHA256: make([][sha256.Size]byte, len(j.SHA256))}
	for i, s := range j.SHA256 {
		if len(s) != 2*sha256.Size || !isLowerHex(s) {
			return nil, fmt.Errorf("custom.%s: hash %d is not 64 lowercase hex digits", ChunksKey, i)
		}
		hex.Decode(c.SHA256[i][:], []byte(s))
	}
	return c, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ChunkHasher computes a target's chunk hashes as its bytes are written to it.
type ChunkHasher struct {
	size int64
	h    hash.Hash
	n    int64 // bytes in the current chunk
	sums [][sha256.Size]byte
}

// NewChunkHasher returns a ChunkHasher for chunks of size bytes.
func NewChunkHasher(size int64) *ChunkHasher {
	return &ChunkHasher{size: size, h: sha256.New()}
}

// Write hashes p; it never fails.
func (c *ChunkHasher) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		k := min(int64(len(p)), c.size-c.n)
		c.h.Write(p[:k])
		c.n += k
		p = p[k:]
		if c.n == c.size {
			c.finish()
		}
	}
	return written, nil
}

func (c *ChunkHasher) finish() {
	var s [sha256.Size]byte
	c.h.Sum(s[:0])
	c.sums = append(c.sums, s)
	c.h.Reset()
	c.n = 0
}

// Chunks ends the last chunk and returns the list.
func (c *ChunkHasher) Chunks() (*Chunks, error) {
	if c.n > 0 {
		c.finish()
	}
	if len(c.sums) == 0 {
		return nil, errors.New("no bytes were hashed")
	}
	return &Chunks{Size: c.size, SHA256: c.sums}, nil
}
