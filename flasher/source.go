package flasher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"
)

// payloadSource hands a target's bytes to the driver straight out of the bundle file and
// hashes them as they go, so a bundle replaced or edited on disk after verification is
// caught before anything is activated. Drivers read in order, so hashing costs no extra
// read; bytes the driver skips (a resumed upload) are read once more at the end.
type payloadSource struct {
	r    io.ReaderAt // section of the bundle file
	size int64
	want [32]byte

	mu     sync.Mutex
	h      hash.Hash
	hashed int64 // bytes [0, hashed) went into h
}

func newPayloadSource(r io.ReaderAt, size int64, want [32]byte) *payloadSource {
	return &payloadSource{r: r, size: size, want: want, h: sha256.New()}
}

// ReadAt serves the driver and feeds the hash with every byte that extends the hashed
// prefix.
func (s *payloadSource) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.r.ReadAt(p, off)
	if n > 0 && off <= s.hashed && off+int64(n) > s.hashed {
		s.h.Write(p[s.hashed-off : n])
		s.hashed = off + int64(n)
	}
	return n, err
}

func (s *payloadSource) catchUp(to int64) error {
	if to > s.size {
		to = s.size
	}
	_, err := io.Copy(s.h, io.NewSectionReader(s.r, s.hashed, to-s.hashed))
	if err != nil {
		return err
	}
	s.hashed = to
	return nil
}

// Verify hashes whatever the driver did not read and compares the whole with the signed
// hash. It is called after the transfer and before activation.
//
// Bytes the driver reads out of order (an MCUboot parser looking at the TLVs at the end)
// are served without hashing; the hash only ever grows by the contiguous prefix, so what
// the driver streams in order is exactly what is hashed.
func (s *payloadSource) Verify() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(s.size); err != nil {
		return err
	}
	var got [32]byte
	s.h.Sum(got[:0])
	if got != s.want {
		return fmt.Errorf("payload hashes to %s, the signed metadata says %s", hex.EncodeToString(got[:8]), hex.EncodeToString(s.want[:8]))
	}
	return nil
}

// HashTo hashes the bundle's bytes up to off, before a transfer that resumes there: the
// device holds them from an earlier run, and the bundle must still be what was verified.
func (s *payloadSource) HashTo(off int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off <= s.hashed {
		return nil
	}
	return s.catchUp(off)
}
