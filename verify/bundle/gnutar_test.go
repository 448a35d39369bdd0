package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// patchHeader edits the header block at off in place and recomputes its checksum, as a
// hand-made archive would carry it.
func patchHeader(data []byte, off int, edit func(h []byte)) {
	h := data[off : off+blockSize]
	edit(h)
	copy(h[148:156], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// headerOffset finds the header block of the entry called name.
func headerOffset(t *testing.T, data []byte, name string) int {
	t.Helper()
	for off := 0; off+blockSize <= len(data); off += blockSize {
		if bytes.HasPrefix(data[off:], append([]byte(name), 0)) && bytes.Equal(data[off+257:off+262], []byte("ustar")) {
			return off
		}
	}
	t.Fatalf("no header for %s", name)
	return 0
}

// gnuTarList lists an archive with the system's GNU tar, or skips.
func gnuTarList(t *testing.T, data []byte) []string {
	t.Helper()
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar binary on PATH: this test compares the reader with GNU tar")
	}
	if out, err := exec.Command(tarPath, "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		t.Skip("tar on PATH is not GNU tar")
	}
	path := filepath.Join(t.TempDir(), "x.fwb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(tarPath, "-tf", path).CombinedOutput()
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// A folder entry with the legacy NUL typeflag and a size: archive/tar takes it for a
// folder of size 0 and reads the payload "inside" it as the next entry; GNU tar skips its
// data, so `tar -tf` never lists that payload. The two must not disagree: it is refused.
func TestLegacyFolderEntryWithASizeIsRefusedLikeGNUTarReadsIt(t *testing.T) {
	inner := makeTar(t, file("targets/"+payloadHash, payloadData))
	inner = inner[:len(inner)-2*blockSize] // the hidden entry, without an end marker
	// archive/tar will not write a file name ending in "/": write "targetsX", then patch.
	entries := append(minimal(), tarEntry{hdr: tarHeader("targetsX", int64(len(inner))), data: inner})
	data := makeTar(t, entries...)
	patchHeader(data, headerOffset(t, data, "targetsX"), func(h []byte) { h[7], h[156] = '/', 0 })

	if list := gnuTarList(t, data); strings.Contains(strings.Join(list, " "), payloadHash) {
		t.Fatalf("GNU tar lists the hidden payload (%q): the premise of this test is wrong", list)
	}
	_, _, _, err := readAll(data, Limits{})
	var be *Error
	if !errors.As(err, &be) || be.Kind != KindFormat || !strings.Contains(be.Reason, "GNU tar would read this entry differently") {
		t.Fatalf("got %v; want the legacy folder entry refused", err)
	}
}

func TestFolderEntryThatDeclaresDataIsRefused(t *testing.T) {
	entries := append(minimal(), tarEntry{hdr: tarHeader("targetsX", 512), data: make([]byte, 512)})
	data := makeTar(t, entries...)
	patchHeader(data, headerOffset(t, data, "targetsX"), func(h []byte) { h[7], h[156] = '/', '5' })
	_, _, _, err := readAll(data, Limits{})
	var be *Error
	if !errors.As(err, &be) || be.Kind != KindFormat || !strings.Contains(be.Reason, "declares 512 bytes") {
		t.Fatalf("got %v", err)
	}
}

// The spec refuses V7 headers (no ustar magic); old GNU headers ("ustar  \0") read like
// ustar.
func TestV7HeaderIsRefusedAndOldGNUHeaderIsRead(t *testing.T) {
	v7 := makeTar(t, withPayload()...)
	patchHeader(v7, headerOffset(t, v7, "metadata/snapshot.json"), func(h []byte) {
		for i := 257; i < 265; i++ {
			h[i] = 0
		}
	})
	_, _, _, err := readAll(v7, Limits{})
	var be *Error
	if !errors.As(err, &be) || be.Kind != KindFormat || be.Entry != "metadata/snapshot.json" || !strings.Contains(be.Reason, "without the ustar magic") {
		t.Fatalf("V7 header: got %v", err)
	}

	gnu := makeTar(t, withPayload()...)
	patchHeader(gnu, headerOffset(t, gnu, "metadata/snapshot.json"), func(h []byte) { copy(h[257:265], "ustar  \x00") })
	if _, payloads, _, err := readAll(gnu, Limits{}); err != nil || string(payloads[payloadHash]) != payloadData {
		t.Fatalf("old GNU header: %v", err)
	}
}

// tarHeader is a plain ustar regular-file header; tests patch its raw fields after writing.
func tarHeader(name string, size int64) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, Format: tar.FormatUSTAR}
}

// A payload of 8 GiB or more does not fit a ustar size field: Write gives it the old GNU
// header with a base-256 size, and the reader reads that size (here from a bundle cut short
// after the header, so that no 9 GiB are written).
func TestPayloadOver8GiBGetsAGNUHeaderTheReaderReads(t *testing.T) {
	const size = 9 << 30
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range minimal() {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.WriteHeader(header("targets/"+payloadHash, size)); err != nil {
		t.Fatalf("Write cannot give a %d-byte payload a header: %v", int64(size), err)
	}
	tw.Flush()
	data := b.Bytes()
	hdr := data[len(data)-blockSize:]
	if string(hdr[257:265]) != "ustar  \x00" || hdr[124] != 0x80 {
		t.Fatalf("header magic %q, size field % x: want old GNU with a base-256 size", hdr[257:265], hdr[124:136])
	}
	if header("targets/"+payloadHash, maxUSTARSize).Format != tar.FormatUSTAR {
		t.Fatal("a payload just under 8 GiB should keep the ustar header")
	}
	data = append(data, make([]byte, 4096)...)
	r := NewReader(bytes.NewReader(data), int64(len(data)), Limits{})
	_, err := r.NextPayload()
	var be *Error
	if !errors.As(err, &be) || be.Kind != KindTruncated || !strings.Contains(be.Reason, fmt.Sprintf("declares %d bytes", int64(size))) {
		t.Fatalf("got %v; want the 9 GiB size read and the file found short", err)
	}
}
