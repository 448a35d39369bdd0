package dfudev

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// nor is a flat NOR flash behind a file: regions at fixed addresses, erased to 0xff,
// programming only clears bits (new = old AND data), as NOR flash does. Every write is
// fsynced, so the device's memory survives its process.
type nor struct {
	mu      sync.Mutex
	file    *os.File
	regions []region
	mem     []byte
}

type region struct {
	start uint32
	size  uint32
	off   int64 // in mem and the file
}

func openNOR(path string, regions []region) (*nor, error) {
	var total int64
	for i := range regions {
		regions[i].off = total
		total += int64(regions[i].size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dfudev: flash %s: %w", path, err)
	}
	mem := bytes.Repeat([]byte{0xff}, int(total))
	fi, err := f.Stat()
	if err == nil && fi.Size() == total {
		_, err = f.ReadAt(mem, 0)
	} else if err == nil {
		_, err = f.WriteAt(mem, 0)
		if err == nil {
			err = f.Truncate(total)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dfudev: flash %s: %w", path, err)
	}
	return &nor{file: f, regions: regions, mem: mem}, nil
}

// locate maps [addr, addr+n) to mem; ok is false when any byte lies outside the regions.
func (m *nor) locate(addr uint32, n int) (int64, bool) {
	for _, r := range m.regions {
		if addr >= r.start && uint64(addr)+uint64(n) <= uint64(r.start)+uint64(r.size) {
			return r.off + int64(addr-r.start), true
		}
	}
	return 0, false
}

func (m *nor) read(addr uint32, b []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	off, ok := m.locate(addr, len(b))
	if ok {
		copy(b, m.mem[off:])
	}
	return ok
}

func (m *nor) store(off int64, b []byte) error {
	copy(m.mem[off:], b)
	if _, err := m.file.WriteAt(b, off); err != nil {
		return err
	}
	return m.file.Sync()
}

func (m *nor) erase(addr, n uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	off, ok := m.locate(addr, int(n))
	if !ok {
		return fmt.Errorf("erase outside memory")
	}
	return m.store(off, bytes.Repeat([]byte{0xff}, int(n)))
}

// program writes b at addr with NOR semantics and reports whether it reads back as b.
func (m *nor) program(addr uint32, b []byte) (verified bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	off, ok := m.locate(addr, len(b))
	if !ok {
		return false, fmt.Errorf("program outside memory")
	}
	out := make([]byte, len(b))
	for i := range b {
		out[i] = m.mem[off+int64(i)] & b[i]
	}
	if err := m.store(off, out); err != nil {
		return false, err
	}
	return bytes.Equal(out, b), nil
}

func (m *nor) close() error { return m.file.Close() }
