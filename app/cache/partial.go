package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

// Expect is what the signed metadata says of a target.
type Expect struct {
	// SHA256 names the file: lowercase hex.
	SHA256 string
	Length int64
	// Hashes holds every hash the metadata lists, by TUF algorithm name ("sha256",
	// "sha512"); all are checked before Commit. SHA256 is checked even if absent here.
	Hashes map[string][]byte
	// Chunks are the signed per-chunk hashes; nil checks the whole file as one chunk.
	Chunks *verify.Chunks
}

// ChunkError says that a chunk's bytes did not hash to its signed hash. The Partial has
// already dropped them: its Offset is the chunk's start again.
type ChunkError struct {
	Index  int
	Offset int64 // where the chunk starts
	Length int64
	Whole  bool // the target has no chunk hashes: the whole file was the chunk
}

func (e *ChunkError) Error() string {
	if e.Whole {
		return fmt.Sprintf("the %d bytes received do not hash to the signed SHA-256", e.Length)
	}
	return fmt.Sprintf("chunk %d (bytes %d..%d) does not hash to its signed SHA-256", e.Index, e.Offset, e.Offset+e.Length)
}

// ErrBusy is returned by OpenPartial when another process is downloading the same target.
var ErrBusy = errors.New("another fieldflash is downloading this target right now; wait for it to finish, then run the command again")

// bufSize is the size of each read; bufCount of them are in flight between the reader
// and the chunk hasher: memory stays at bufSize*bufCount whatever the target's size.
const (
	bufSize  = 1 << 20
	bufCount = 8
	// writebackEvery is how often disk writeback is started while a download grows.
	writebackEvery = 8 << 20
)

// Partial is a download in progress: a file that grows from the start, checked chunk by
// chunk as it grows, and moved into the store by Commit once complete and verified. It is
// held exclusively (a file lock) from OpenPartial to Close.
type Partial struct {
	c      *Cache
	e      Expect
	chunks *verify.Chunks // e.Chunks, or the whole file as its one chunk
	f      *os.File
	path   string

	off      int64     // bytes in the file: where the next byte goes
	flushed  int64     // bytes handed to the kernel's writeback so far
	verified int64     // bytes in chunks whose hash matched
	ch       hash.Hash // the current chunk's hash so far
	chPos    int64     // bytes of the current chunk hashed

	// whole hashes every byte in order, for the whole-file check at Commit; it goes back to
	// a chunk's start when that chunk turns out bad (snaps), so no byte of a bad chunk counts.
	whole    map[string]hash.Hash
	wholeOff int64 // bytes fed to whole
	snaps    []wholeState

	pool chan []byte
}

// OpenPartial opens the download of the target e describes, picking up what an earlier
// run left: the bytes already on disk are checked again against the chunk hashes (never
// trusted), and the file is cut back to the end of the last good chunk if one is bad.
func (c *Cache) OpenPartial(e Expect) (*Partial, error) {
	if !bundle.IsSHA256Hex(e.SHA256) {
		return nil, fmt.Errorf("target hash %q is not 64 lowercase hex digits", e.SHA256)
	}
	if e.Length <= 0 {
		return nil, fmt.Errorf("target %s: signed length %d; there is nothing to download", short(e.SHA256), e.Length)
	}
	want, _ := hex.DecodeString(e.SHA256)
	if h, ok := e.Hashes["sha256"]; ok && !bytes.Equal(h, want) {
		return nil, fmt.Errorf("target %s: listed sha256 %x differs from the name", short(e.SHA256), h)
	}
	p := &Partial{c: c, e: e, path: filepath.Join(c.dir, "partial", e.SHA256), whole: map[string]hash.Hash{}}
	for alg := range e.Hashes {
		switch alg {
		case "sha256":
		case "sha512":
			p.whole[alg] = sha512.New()
		default:
			// go-tuf refuses a target with a hash it cannot compute; so does this.
			return nil, fmt.Errorf("target %s: lists a %q hash, which fieldflash (like go-tuf) cannot check; ask the vendor to list sha256", short(e.SHA256), alg)
		}
	}
	p.chunks = e.Chunks
	if p.chunks != nil {
		if int64(len(p.chunks.SHA256)) != verify.ChunkCount(e.Length, p.chunks.Size) {
			return nil, fmt.Errorf("target %s: %d chunk hashes do not cover %d bytes in chunks of %d", short(e.SHA256), len(p.chunks.SHA256), e.Length, p.chunks.Size)
		}
		p.whole["sha256"] = sha256.New()
	} else {
		var sum [sha256.Size]byte
		copy(sum[:], want)
		p.chunks = &verify.Chunks{Size: e.Length, SHA256: [][sha256.Size]byte{sum}}
	}
	p.ch = sha256.New()
	p.pool = make(chan []byte, bufCount)
	for range bufCount {
		p.pool <- make([]byte, bufSize)
	}

	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	busy, err := tryLock(f)
	if err != nil || busy {
		f.Close()
		if busy {
			return nil, ErrBusy
		}
		return nil, err
	}
	p.f = f
	fi, err := f.Stat()
	if err != nil {
		p.Close()
		return nil, err
	}
	if have := min(fi.Size(), e.Length); have > 0 {
		// An earlier run's bytes go through the same checks as bytes from a mirror.
		err := p.run(context.Background(), io.NewSectionReader(f, 0, have), false)
		var ce *ChunkError
		if err != nil && !errors.As(err, &ce) && !errors.Is(err, io.ErrUnexpectedEOF) {
			p.Close()
			return nil, err
		}
	}
	if err := f.Truncate(p.off); err != nil {
		p.Close()
		return nil, err
	}
	p.flushed = p.off
	return p, nil
}

// Offset is how many bytes the partial file holds: a download resumes here.
func (p *Partial) Offset() int64 { return p.off }

// Verified is how many bytes lie in chunks whose hash already matched.
func (p *Partial) Verified() int64 { return p.verified }

// Complete reports whether every byte is there and every chunk matched.
func (p *Partial) Complete() bool { return p.verified == p.e.Length }

// ReadFrom appends what r yields, up to the signed length and never beyond, checking each
// chunk as it completes. It returns nil once the target is complete, a *ChunkError when a
// chunk was wrong (those bytes are gone again), or r's error (io.ErrUnexpectedEOF when r
// ends early). Bytes of a chunk still incomplete when r fails are kept: the next source
// continues them, and the chunk's hash judges all its bytes together.
func (p *Partial) ReadFrom(ctx context.Context, r io.Reader) error {
	return p.run(ctx, r, true)
}

type piece struct {
	buf  []byte
	n    int
	refs *atomic.Int32 // how many hashers still read buf; the last returns it to the pool
}

// run is the pipeline: this goroutine reads and writes the file; one goroutine hashes
// chunks, another the whole file, from the same buffers, so the two SHA-256 passes run
// side by side and a download is not held to one core's hashing speed. The whole-file
// hashes may run ahead of the chunk check: they keep their state at every chunk boundary
// and go back to the start of a chunk that turns out bad.
func (p *Partial) run(ctx context.Context, r io.Reader, write bool) error {
	pieces := make(chan piece, bufCount)
	wholeCh := make(chan piece, bufCount)
	var bad atomic.Pointer[ChunkError]
	var wg sync.WaitGroup
	release := func(pc piece) {
		if pc.refs.Add(-1) == 0 {
			p.pool <- pc.buf
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for pc := range pieces {
			if bad.Load() == nil {
				if ce := p.hashChunks(pc.buf[:pc.n]); ce != nil {
					bad.Store(ce)
				}
			}
			release(pc)
		}
	}()
	go func() {
		defer wg.Done()
		for pc := range wholeCh {
			p.hashWhole(pc.buf[:pc.n])
			release(pc)
		}
	}()
	hashers := int32(1)
	if len(p.whole) > 0 {
		hashers = 2
	}

	var readErr error
	for p.off < p.e.Length && bad.Load() == nil {
		if err := ctx.Err(); err != nil {
			readErr = err
			break
		}
		buf := <-p.pool
		want := min(int64(len(buf)), p.e.Length-p.off)
		n, err := r.Read(buf[:want])
		if n > 0 {
			if write {
				if _, werr := p.f.WriteAt(buf[:n], p.off); werr != nil {
					p.pool <- buf
					readErr = werr
					break
				}
			}
			p.off += int64(n)
			if write && p.off-p.flushed >= writebackEvery {
				startWriteback(p.f, p.flushed, p.off-p.flushed)
				p.flushed = p.off
			}
			pc := piece{buf: buf, n: n, refs: new(atomic.Int32)}
			pc.refs.Store(hashers)
			pieces <- pc
			if hashers == 2 {
				wholeCh <- pc
			}
		} else {
			p.pool <- buf
		}
		if err == io.EOF {
			if p.off < p.e.Length {
				readErr = io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(pieces)
	close(wholeCh)
	wg.Wait()

	if ce := bad.Load(); ce != nil {
		// Drop the bad chunk and whatever came after it: the chunk hasher starts afresh and
		// the whole-file hashes go back to the chunk's start.
		p.off = ce.Offset
		p.ch.Reset()
		p.chPos = 0
		if err := p.rewindWhole(ce.Offset); err != nil {
			return err
		}
		if err := p.f.Truncate(p.off); err != nil {
			return err
		}
		return ce
	}
	return readErr
}

// hashChunks feeds b, which continues the file at p.verified+p.chPos, to the chunk hash,
// closing each chunk as it fills.
func (p *Partial) hashChunks(b []byte) *ChunkError {
	for len(b) > 0 {
		i := int(p.verified / p.chunks.Size)
		off, n := p.chunks.Span(i, p.e.Length)
		k := min(int64(len(b)), n-p.chPos)
		p.ch.Write(b[:k])
		p.chPos += k
		b = b[k:]
		if p.chPos < n {
			continue
		}
		var sum [sha256.Size]byte
		p.ch.Sum(sum[:0])
		if sum != p.chunks.SHA256[i] {
			return &ChunkError{Index: i, Offset: off, Length: n, Whole: p.e.Chunks == nil}
		}
		p.verified = off + n
		p.ch.Reset()
		p.chPos = 0
	}
	return nil
}

// hashWhole feeds b, which continues the file at p.wholeOff, to the whole-file hashes,
// keeping their state at each chunk boundary it passes.
func (p *Partial) hashWhole(b []byte) {
	for len(b) > 0 {
		next := (p.wholeOff/p.chunks.Size + 1) * p.chunks.Size
		k := min(int64(len(b)), next-p.wholeOff)
		for _, h := range p.whole {
			h.Write(b[:k])
		}
		p.wholeOff += k
		b = b[k:]
		if p.wholeOff == next {
			p.snapshot()
		}
	}
}

// maxSnapshots bounds the boundary states kept: the whole-file hashes run at most the
// buffers in flight ahead of the chunk check, a few chunks at the smallest chunk size.
const maxSnapshots = bufCount*bufSize/verify.MinChunkSize + 4

// snapshot keeps the whole-file hashes' state at p.wholeOff.
func (p *Partial) snapshot() {
	st := wholeState{off: p.wholeOff, state: map[string][]byte{}}
	for alg, h := range p.whole {
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return // cannot happen for sha256 and sha512; a later rewind then restarts
		}
		st.state[alg] = b
	}
	p.snaps = append(p.snaps, st)
	if len(p.snaps) > maxSnapshots {
		p.snaps = p.snaps[1:]
	}
}

// rewindWhole puts the whole-file hashes back to where they were at off, a chunk
// boundary, dropping what they hashed after it.
func (p *Partial) rewindWhole(off int64) error {
	if off == 0 {
		for _, h := range p.whole {
			h.Reset()
		}
		p.wholeOff, p.snaps = 0, nil
		return nil
	}
	for i := len(p.snaps) - 1; i >= 0; i-- {
		st := p.snaps[i]
		if st.off != off {
			continue
		}
		for alg, h := range p.whole {
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.state[alg]); err != nil {
				return err
			}
		}
		p.wholeOff, p.snaps = off, p.snaps[:i+1]
		return nil
	}
	return fmt.Errorf("internal: no whole-file hash state at byte %d; delete %s and fetch again", off, p.path)
}

type wholeState struct {
	off   int64
	state map[string][]byte
}

// HashError says that a complete target's whole-file hash differs from the signed one
// though every chunk matched: the chunk list and the target disagree, which only the
// repository can fix.
type HashError struct{ Algorithm string }

func (e *HashError) Error() string {
	return fmt.Sprintf("every chunk matched its signed hash but the whole file's %s does not: the repository's chunk list and target disagree", e.Algorithm)
}

// Commit checks the complete file against the signed length and every signed hash, makes
// it durable, and moves it under its hash name. It returns the file's path in the store.
// A file that fails is deleted: it cannot be resumed into something better.
func (p *Partial) Commit() (string, error) {
	if !p.Complete() {
		return "", fmt.Errorf("target %s: %d of %d bytes verified; the download is not complete", short(p.e.SHA256), p.verified, p.e.Length)
	}
	for _, alg := range sortedKeys(p.whole) {
		want := p.e.Hashes[alg]
		if alg == "sha256" {
			want, _ = hex.DecodeString(p.e.SHA256)
		}
		if !bytes.Equal(p.whole[alg].Sum(nil), want) {
			p.restart()
			return "", &HashError{Algorithm: alg}
		}
	}
	if err := p.f.Sync(); err != nil {
		return "", err
	}
	if err := p.f.Chmod(0o444); err != nil {
		return "", err
	}
	// Closed before the rename, which Windows refuses on an open file.
	if err := p.Close(); err != nil {
		return "", err
	}
	final := p.c.Path(p.e.SHA256)
	if err := os.Rename(p.path, final); err != nil {
		return "", err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return "", err
	}
	return final, nil
}

// restart empties the partial file and every hash, for a download from the first byte.
func (p *Partial) restart() {
	p.f.Truncate(0)
	p.off, p.verified, p.chPos = 0, 0, 0
	p.ch.Reset()
	p.rewindWhole(0)
}

// Close releases the partial file, keeping its bytes for the next run.
func (p *Partial) Close() error {
	if p.f == nil {
		return nil
	}
	unlock(p.f)
	err := p.f.Close()
	p.f = nil
	return err
}

func sortedKeys(m map[string]hash.Hash) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12] + "…"
	}
	return sha
}
