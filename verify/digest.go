package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
)

// bundleDigest identifies a bundle: the SHA-256 of the bundle file in which the data of
// every payload is replaced by that payload's 32-byte SHA-256 (docs/bundle-format.md,
// "Bundle digest"). Payload hashes were already verified while streaming, so this hashes
// only the headers and metadata a second time: the whole file's own SHA-256 would cost a
// second pass over every payload byte and double the time to verify a large bundle.
// It is as collision resistant as the file's hash: any change to the file changes either
// the non-payload bytes or a payload hash.
func bundleDigest(ra io.ReaderAt, size int64, targets []Target) (string, error) {
	type region struct {
		off, n int64
		sum    []byte
	}
	seen := map[int64]bool{}
	var payloads []region
	for _, t := range targets {
		if seen[t.Offset] {
			continue // two targets naming the same payload
		}
		seen[t.Offset] = true
		sum, err := hex.DecodeString(t.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return "", fmt.Errorf("payload %s has no SHA-256", t.Path)
		}
		payloads = append(payloads, region{t.Offset, t.Length, sum})
	}
	sort.Slice(payloads, func(i, j int) bool { return payloads[i].off < payloads[j].off })
	h := sha256.New()
	var pos int64
	for _, p := range payloads {
		if p.off < pos {
			return "", fmt.Errorf("payload regions overlap at byte %d", p.off)
		}
		if _, err := io.Copy(h, io.NewSectionReader(ra, pos, p.off-pos)); err != nil {
			return "", err
		}
		h.Write(p.sum)
		pos = p.off + p.n
	}
	if _, err := io.Copy(h, io.NewSectionReader(ra, pos, size-pos)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
