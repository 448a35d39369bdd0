package flasher

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
)

// Images larger than inMemoryLimit are copied to a temporary file that nobody else can
// open by name; what the driver reads is the verified copy, byte for byte.
func TestLargeImageIsServedFromAPrivateFile(t *testing.T) {
	old := inMemoryLimit
	inMemoryLimit = 1 << 10
	t.Cleanup(func() { inMemoryLimit = old })
	img := bytes.Repeat([]byte("verified image bytes "), 500)
	c, err := copyVerified(bytes.NewReader(img), int64(len(img)), sha256.Sum256(img))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.file == nil || c.mem != nil {
		t.Fatal("a large image was kept in memory")
	}
	if runtime.GOOS != "windows" {
		if _, err := os.Stat(c.file.Name()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the private copy %s can still be opened by name: %v", c.file.Name(), err)
		}
	}
	got, err := io.ReadAll(io.NewSectionReader(c, 0, int64(len(img))))
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	tail := make([]byte, 64)
	if n, err := c.ReadAt(tail, int64(len(img))-10); n != 10 || err != io.EOF {
		t.Fatalf("reading past the end: %d, %v", n, err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

// A source that does not hash to the signed SHA-256 leaves nothing behind.
func TestCopyThatDoesNotMatchTheSignedHashIsRefused(t *testing.T) {
	img := []byte("the image that was verified")
	other := []byte("the image an attacker wrote")
	if _, err := copyVerified(bytes.NewReader(other), int64(len(other)), sha256.Sum256(img)); !errors.Is(err, errChanged) {
		t.Fatalf("err = %v, want the change reported", err)
	}
	if _, err := copyVerified(bytes.NewReader(img[:5]), int64(len(img)), sha256.Sum256(img)); err == nil {
		t.Fatal("a short source was accepted")
	}
}
