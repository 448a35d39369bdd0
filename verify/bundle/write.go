package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// Contents is everything a bundle carries: the raw bytes of each metadata file as signed,
// and the payloads, which are opened and streamed only while the bundle is written.
type Contents struct {
	Roots     map[int64][]byte // root.json by version: the chain from 1 (or the oldest kept) to N
	Timestamp []byte
	Snapshot  []byte
	Targets   []byte
	Delegated map[string][]byte // delegated targets roles by role name
	Payloads  []PayloadSource
}

// PayloadSource is one payload to write. Write refuses it unless the bytes Open yields have
// exactly Size and SHA256: a bundle never names a payload by a hash it does not have.
type PayloadSource struct {
	SHA256 string // lowercase hex
	Size   int64
	Open   func() (io.ReadCloser, error)
}

// Write writes c as a bundle: a deterministic ustar archive in the canonical order of
// docs/bundle-format.md. The same Contents always give the same bytes. Payloads are
// streamed, and each one's size and hash are checked while it is copied; on an error the
// bytes already written are not a bundle and must be discarded.
//
// Write refuses what the Reader would refuse with default Limits.
func Write(w io.Writer, c *Contents) error {
	if err := checkContents(c); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, v := range sortedKeys(c.Roots) {
		if err := writeFile(tw, rootName(v), c.Roots[v]); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{roleName("timestamp"), c.Timestamp},
		{roleName("snapshot"), c.Snapshot},
		{roleName("targets"), c.Targets},
	} {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	for _, role := range sortedKeys(c.Delegated) {
		if err := writeFile(tw, roleName(role), c.Delegated[role]); err != nil {
			return err
		}
	}
	payloads := slices.Clone(c.Payloads)
	sort.Slice(payloads, func(i, j int) bool { return payloads[i].SHA256 < payloads[j].SHA256 })
	for _, p := range payloads {
		if err := writePayload(tw, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func checkContents(c *Contents) error {
	l := Limits{}.WithDefaults()
	if len(c.Roots) == 0 {
		return errors.New("bundle: no root metadata: a bundle carries at least the newest root")
	}
	if c.Timestamp == nil || c.Snapshot == nil || c.Targets == nil {
		return errors.New("bundle: timestamp, snapshot and targets metadata are all required")
	}
	if len(c.Roots) > l.MaxRootVersions {
		return fmt.Errorf("bundle: %d root versions, more than the %d a reader accepts", len(c.Roots), l.MaxRootVersions)
	}
	if len(c.Delegated) > l.MaxRoles {
		return fmt.Errorf("bundle: %d delegated roles, more than the %d a reader accepts", len(c.Delegated), l.MaxRoles)
	}
	if n := len(c.Roots) + 3 + len(c.Delegated) + len(c.Payloads); n > l.MaxEntries {
		return fmt.Errorf("bundle: %d entries, more than the %d a reader accepts", n, l.MaxEntries)
	}
	total := int64(len(c.Timestamp) + len(c.Snapshot) + len(c.Targets))
	for v, b := range c.Roots {
		if v < 1 {
			return fmt.Errorf("bundle: root version %d: versions start at 1", v)
		}
		total += int64(len(b))
	}
	for role, b := range c.Delegated {
		if why := CheckRoleName(role); why != "" {
			return fmt.Errorf("bundle: delegated role %q: %s", role, why)
		}
		total += int64(len(b))
	}
	if total > l.MaxMetadataTotalBytes {
		return fmt.Errorf("bundle: %d bytes of metadata, more than the %d a reader accepts", total, l.MaxMetadataTotalBytes)
	}
	seen := map[string]bool{}
	for _, p := range c.Payloads {
		if !IsSHA256Hex(p.SHA256) {
			return fmt.Errorf("bundle: payload %q: SHA256 must be 64 lowercase hex digits", p.SHA256)
		}
		if seen[p.SHA256] {
			return fmt.Errorf("bundle: payload %s given twice", p.SHA256)
		}
		seen[p.SHA256] = true
		if p.Size < 0 || p.Size > l.MaxPayloadBytes {
			return fmt.Errorf("bundle: payload %s: size %d outside 0..%d", p.SHA256, p.Size, l.MaxPayloadBytes)
		}
		if p.Open == nil {
			return fmt.Errorf("bundle: payload %s: no Open", p.SHA256)
		}
	}
	return nil
}

// maxUSTARSize is the largest size a ustar header holds: 11 octal digits.
const maxUSTARSize = 1<<33 - 1

func header(name string, size int64) *tar.Header {
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if size > maxUSTARSize {
		// 8 GiB or more: the old GNU header with a base-256 size, as tar --format=gnu
		// writes it (docs/bundle-format.md, section 1). Payload names fit its name field.
		h.Format = tar.FormatGNU
	}
	return h
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	if int64(len(data)) > DefaultMaxMetadataBytes {
		return fmt.Errorf("bundle: %s: %d bytes, more than the %d a reader accepts", name, len(data), DefaultMaxMetadataBytes)
	}
	if err := tw.WriteHeader(header(name, int64(len(data)))); err != nil {
		return fmt.Errorf("bundle: %s: %w", name, err)
	}
	_, err := tw.Write(data)
	return err
}

func writePayload(tw *tar.Writer, p PayloadSource) error {
	name := payloadName(p.SHA256)
	rc, err := p.Open()
	if err != nil {
		return fmt.Errorf("bundle: payload %s: %w", p.SHA256, err)
	}
	defer rc.Close()
	if err := tw.WriteHeader(header(name, p.Size)); err != nil {
		return fmt.Errorf("bundle: %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(rc, p.Size))
	if err != nil {
		return fmt.Errorf("bundle: payload %s: %w", p.SHA256, err)
	}
	if n < p.Size {
		return fmt.Errorf("bundle: payload %s: source has %d bytes, %d declared", p.SHA256, n, p.Size)
	}
	var extra [1]byte
	if k, _ := io.ReadFull(rc, extra[:]); k > 0 {
		return fmt.Errorf("bundle: payload %s: source is longer than the %d bytes declared", p.SHA256, p.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("bundle: payload %s: source hashes to %s; the payload changed since it was signed", p.SHA256, got)
	}
	return nil
}

func sortedKeys[K int64 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
