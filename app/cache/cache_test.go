package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/verify"
)

const testChunk = verify.MinChunkSize

func target(t testing.TB, size int, chunked bool) ([]byte, Expect) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size)}).Read(data)
	sum := sha256.Sum256(data)
	e := Expect{SHA256: hex.EncodeToString(sum[:]), Length: int64(size), Hashes: map[string][]byte{"sha256": sum[:]}}
	if chunked {
		h := verify.NewChunkHasher(testChunk)
		h.Write(data)
		e.Chunks, _ = h.Chunks()
	}
	return data, e
}

func open(t *testing.T) *Cache {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// endless repeats data forever: a mirror that does not stop at the signed length.
type endless struct {
	data []byte
	pos  int
	read int64
}

func (e *endless) Read(b []byte) (int, error) {
	n := copy(b, e.data[e.pos:])
	e.pos = (e.pos + n) % len(e.data)
	e.read += int64(n)
	return n, nil
}

func TestADownloadInPiecesLandsUnderItsHashOnlyWhenVerified(t *testing.T) {
	c := open(t)
	data, e := target(t, 5*testChunk+123, true)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	// A mirror that hangs up in the middle of chunk 1, then another that sends the rest.
	cut := testChunk + 777
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data[:cut])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short read: err = %v; want io.ErrUnexpectedEOF", err)
	}
	if p.Offset() != int64(cut) || p.Verified() != testChunk {
		t.Fatalf("after the cut: offset %d, verified %d; want %d and %d", p.Offset(), p.Verified(), cut, testChunk)
	}
	if c.Has(e.SHA256, e.Length) {
		t.Fatal("an incomplete download is already under its hash name")
	}
	if _, err := p.Commit(); err == nil {
		t.Fatal("Commit of an incomplete download succeeded")
	}
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data[cut:])); err != nil {
		t.Fatal(err)
	}
	path, err := p.Commit()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) || path != c.Path(e.SHA256) || !c.Has(e.SHA256, e.Length) {
		t.Fatalf("committed %d bytes at %s; want the target at %s", len(got), path, c.Path(e.SHA256))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("a verified target is writable (%v)", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "partial", e.SHA256)); !os.IsNotExist(err) {
		t.Errorf("the partial file is still there after Commit: %v", err)
	}
}

func TestAFlippedByteIsCaughtAtItsChunkAndOnlyThatChunkIsFetchedAgain(t *testing.T) {
	c := open(t)
	data, e := target(t, 6*testChunk, true)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	bad := bytes.Clone(data)
	bad[2*testChunk+5] ^= 0x20
	err = p.ReadFrom(context.Background(), bytes.NewReader(bad))
	var ce *ChunkError
	if !errors.As(err, &ce) || ce.Index != 2 || ce.Offset != 2*testChunk {
		t.Fatalf("err = %v; want chunk 2 refused", err)
	}
	if p.Offset() != 2*testChunk {
		t.Fatalf("offset %d after the bad chunk; want %d (its start)", p.Offset(), 2*testChunk)
	}
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data[p.Offset():])); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestARestartChecksTheBytesOnDiskAgainInsteadOfTrustingThem(t *testing.T) {
	c := open(t)
	data, e := target(t, 4*testChunk, true)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	p.ReadFrom(context.Background(), bytes.NewReader(data[:3*testChunk+10]))
	p.Close()
	// The disk (or someone) changed a byte of chunk 1 while fieldflash was not running.
	partial := filepath.Join(c.Dir(), "partial", e.SHA256)
	f, _ := os.OpenFile(partial, os.O_RDWR, 0)
	f.WriteAt([]byte{data[testChunk+9] ^ 1}, testChunk+9)
	f.Close()

	p, err = c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Offset() != testChunk || p.Verified() != testChunk {
		t.Fatalf("resumed at %d (verified %d); want %d: the damaged chunk and all after it dropped", p.Offset(), p.Verified(), testChunk)
	}
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data[p.Offset():])); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestARestartKeepsEveryGoodByteIncludingAnUnfinishedChunk(t *testing.T) {
	c := open(t)
	data, e := target(t, 4*testChunk, true)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	cut := 2*testChunk + 999
	p.ReadFrom(context.Background(), bytes.NewReader(data[:cut]))
	p.Close()
	p, err = c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Offset() != int64(cut) || p.Verified() != 2*testChunk {
		t.Fatalf("resumed at %d, verified %d; want %d and %d", p.Offset(), p.Verified(), cut, 2*testChunk)
	}
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data[cut:])); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestATargetWithoutChunkHashesIsJudgedWhole(t *testing.T) {
	c := open(t)
	data, e := target(t, 3*testChunk, false)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	var ce *ChunkError
	if err := p.ReadFrom(context.Background(), bytes.NewReader(bad)); !errors.As(err, &ce) || !ce.Whole || p.Offset() != 0 {
		t.Fatalf("err = %v, offset %d; want the whole file refused and dropped", err, p.Offset())
	}
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestEndlessDataStopsAtTheSignedLength(t *testing.T) {
	c := open(t)
	data, e := target(t, 2*testChunk+1, true)
	src := &endless{data: append(bytes.Clone(data), "and more and more"...)}
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ReadFrom(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if src.read != e.Length {
		t.Fatalf("read %d bytes from a source that never ends; want exactly the signed %d", src.read, e.Length)
	}
	if _, err := p.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestChunksThatDisagreeWithTheWholeHashAreNeverCommitted(t *testing.T) {
	c := open(t)
	data, e := target(t, 2*testChunk, true)
	other, _ := target(t, 2*testChunk+1, true)
	sum := sha256.Sum256(other)
	e.SHA256 = hex.EncodeToString(sum[:]) // the chunks say data, the name says other
	e.Hashes = nil
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ReadFrom(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var he *HashError
	if _, err := p.Commit(); !errors.As(err, &he) || c.Has(e.SHA256, e.Length) {
		t.Fatalf("Commit: %v; want a HashError and nothing under the hash name", err)
	}
	if p.Offset() != 0 {
		t.Fatalf("offset %d after a failed Commit; want a restart from 0", p.Offset())
	}
}

func TestEveryListedHashIsChecked(t *testing.T) {
	c := open(t)
	data, e := target(t, testChunk/2, false)
	wrong := sha512.Sum512([]byte("not it"))
	e.Hashes["sha512"] = wrong[:]
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.ReadFrom(context.Background(), bytes.NewReader(data))
	var he *HashError
	if _, err := p.Commit(); !errors.As(err, &he) || he.Algorithm != "sha512" {
		t.Fatalf("Commit: %v; want the sha512 mismatch", err)
	}
	e.Hashes["md5"] = []byte{1}
	if _, err := c.OpenPartial(e); err == nil {
		t.Fatal("a target listing a hash nobody can check was accepted")
	}
}

func TestOneDownloadOfATargetAtATime(t *testing.T) {
	c := open(t)
	_, e := target(t, 100, false)
	p, err := c.OpenPartial(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenPartial(e); !errors.Is(err, ErrBusy) {
		t.Fatalf("second OpenPartial: %v; want ErrBusy", err)
	}
	p.Close()
	p2, err := c.OpenPartial(e)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	p2.Close()
}

func TestRootChainIsKeptPerRepository(t *testing.T) {
	c := open(t)
	if err := c.SaveRoot("acme", 1, []byte("r1")); err != nil {
		t.Fatal(err)
	}
	c.SaveRoot("acme", 2, []byte("r2"))
	c.SaveRoot("../evil", 1, []byte("x"))
	roots, err := c.Roots("acme")
	if err != nil || len(roots) != 2 || string(roots[2]) != "r2" {
		t.Fatalf("roots %v, %v", roots, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "evil")); err == nil {
		t.Fatal("a repository name escaped the cache")
	}
	if r, _ := c.Roots("other"); len(r) != 0 {
		t.Fatalf("unknown repository has roots %v", r)
	}
}

// BenchmarkPartialReadFrom measures the verified write path alone (chunk and whole-file
// SHA-256, file writes) for a 64 MiB target.
func BenchmarkPartialReadFrom(b *testing.B) {
	data, e := target(b, 64<<20, false)
	h := verify.NewChunkHasher(verify.ChunkSizeFor(e.Length))
	h.Write(data)
	e.Chunks, _ = h.Chunks()
	b.SetBytes(e.Length)
	b.ResetTimer()
	for range b.N {
		c, _ := Open(b.TempDir())
		p, err := c.OpenPartial(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.ReadFrom(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
