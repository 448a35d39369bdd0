package release

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/fieldflash/fieldflash/verify"
)

func TestLargeTargetsAreSignedChunkByChunk(t *testing.T) {
	f := newFixture(t)
	data := make([]byte, 3<<20+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	tf, err := f.AddTarget(NewTarget{Path: "acme-gw/big.bin", File: f.payload("big.bin", data), Meta: appMeta("1.0.0", 1)})
	f.must(err)
	chunks, err := verify.ParseChunks(*tf.Custom, tf.Length)
	if err != nil || chunks == nil {
		t.Fatalf("chunk hashes of a %d-byte target: %v, %v; want them signed", len(data), chunks, err)
	}
	if chunks.Size != verify.DefaultChunkSize || len(chunks.SHA256) != 4 {
		t.Fatalf("chunks of %d bytes, %d of them; want 4 of 1 MiB", chunks.Size, len(chunks.SHA256))
	}
	for i := range chunks.SHA256 {
		off, n := chunks.Span(i, tf.Length)
		if sha256.Sum256(data[off:off+n]) != chunks.SHA256[i] {
			t.Fatalf("chunk %d: signed hash is not the SHA-256 of its bytes", i)
		}
	}
	// The field sits beside custom.fieldflash, which reads as before.
	if m, err := TargetMetaOf(tf); err != nil || m.Version != "1.0.0" {
		t.Fatalf("custom.fieldflash = %+v, %v", m, err)
	}

	small, err := f.AddTarget(NewTarget{Path: "acme-gw/small.bin", File: f.payload("small.bin", data[:1<<20]), Meta: appMeta("1.0.1", 1)})
	f.must(err)
	if c, err := verify.ParseChunks(*small.Custom, small.Length); c != nil || err != nil {
		t.Fatalf("a one-chunk target carries chunk hashes %v (%v); want none: its hash is the chunk's", c, err)
	}
}
