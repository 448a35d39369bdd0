package flasher

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// verifiedCopy is what a device receives: a private copy of the target's payload, taken
// from the bundle when the plan is made and checked against the signed SHA-256 before a
// single byte is sent. The bundle file is not read again, so whatever happens to it after
// verification (replaced on disk, rewritten during a retry pause, edited before a resumed
// run) the device gets only verified bytes, resends and resumed transfers included. That
// matters most where a transfer writes in place: a classic bootloader or MCUboot serial
// recovery has overwritten the old image before any check after the transfer could run.
type verifiedCopy struct {
	mem  []byte   // payloads up to inMemoryLimit
	file *os.File // larger ones: a temporary file that only this process can reach
	size int64
	want [32]byte
}

// inMemoryLimit is the largest payload copied into memory; larger ones go to a temporary
// file, so memory stays flat whatever the image's size. A variable for tests.
var inMemoryLimit int64 = 64 << 20

// errChanged marks a copy that did not hash to the signed SHA-256.
var errChanged = errors.New("changed after it was verified")

// copyVerified copies size bytes from src (the payload's section of the bundle) and checks
// them against want. On any failure nothing is kept.
func copyVerified(src io.Reader, size int64, want [32]byte) (*verifiedCopy, error) {
	c := &verifiedCopy{size: size, want: want}
	h := sha256.New()
	var sink io.Writer
	var buf *bytes.Buffer
	if size <= inMemoryLimit {
		buf = bytes.NewBuffer(make([]byte, 0, size))
		sink = buf
	} else {
		f, err := privateTempFile()
		if err != nil {
			return nil, fmt.Errorf("making a private copy of the image: %w", err)
		}
		c.file = f
		sink = f
	}
	n, err := io.Copy(io.MultiWriter(sink, h), io.LimitReader(src, size))
	if err == nil && n < size {
		err = fmt.Errorf("is shorter than when it was verified (%d of %d bytes)", n, size)
	}
	if err == nil {
		var got [32]byte
		h.Sum(got[:0])
		if got != want {
			err = fmt.Errorf("%w: its payload hashes to %s…, the signed metadata says %s…", errChanged, hex.EncodeToString(got[:8]), hex.EncodeToString(want[:8]))
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if buf != nil {
		c.mem = buf.Bytes()
	}
	return c, nil
}

// privateTempFile creates a temporary file readable and writable by this user only, and
// unlinks it at once where the system allows, so no other process can open it by name.
func privateTempFile() (*os.File, error) {
	f, err := os.CreateTemp("", "fieldflash-image-*")
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" {
		// An open file stays readable after its name is gone.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// ReadAt serves the driver from the verified copy.
func (c *verifiedCopy) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if c.file != nil {
		if off >= c.size {
			return 0, io.EOF
		}
		if max := c.size - off; int64(len(p)) > max {
			n, err := c.file.ReadAt(p[:max], off)
			if err == nil {
				err = io.EOF
			}
			return n, err
		}
		return c.file.ReadAt(p, off)
	}
	if off >= int64(len(c.mem)) {
		return 0, io.EOF
	}
	n := copy(p, c.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Verify hashes the copy again and compares it with the signed hash: before activation,
// whatever could have damaged the copy itself (a failing disk under the temporary file)
// is caught.
func (c *verifiedCopy) Verify() error {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(c, 0, c.size)); err != nil {
		return err
	}
	var got [32]byte
	h.Sum(got[:0])
	if got != c.want {
		return fmt.Errorf("the private copy of the image hashes to %s…, the signed metadata says %s…", hex.EncodeToString(got[:8]), hex.EncodeToString(c.want[:8]))
	}
	return nil
}

// Close releases the copy.
func (c *verifiedCopy) Close() error {
	c.mem = nil
	if c.file == nil {
		return nil
	}
	name := c.file.Name()
	err := c.file.Close()
	c.file = nil
	if runtime.GOOS == "windows" {
		os.Remove(name)
	}
	return err
}
