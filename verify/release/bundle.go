package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/verify/bundle"
	"github.com/fieldflash/fieldflash/verify/untrusted"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Contents gathers what a bundle of the given target paths (all targets when none) carries:
// the whole root chain, timestamp, snapshot, targets, every delegated role, and the payloads.
// It refuses a repository that Check refuses.
func (r *Repo) Contents(paths []string) (*bundle.Contents, error) {
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("repository %s is not ready to bundle: %w", r.Dir, err)
	}
	c := &bundle.Contents{Roots: map[int64][]byte{}, Delegated: map[string][]byte{}}
	versions, err := r.rootVersions()
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		_, data, err := r.rootVersion(v)
		if err != nil {
			return nil, err
		}
		c.Roots[v] = data
	}
	if c.Timestamp, err = r.RoleFile(metadata.TIMESTAMP); err != nil {
		return nil, err
	}
	if c.Snapshot, err = r.RoleFile(metadata.SNAPSHOT); err != nil {
		return nil, err
	}
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	for _, tr := range roles {
		data, err := r.RoleFile(tr.Name)
		if err != nil {
			return nil, err
		}
		if tr.Name == metadata.TARGETS {
			c.Targets = data
		} else {
			c.Delegated[tr.Name] = data
		}
	}

	targets, err := r.Targets()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range paths {
		if !slices.ContainsFunc(targets, func(t Target) bool { return t.Path == p }) {
			return nil, fmt.Errorf("target %s: not listed by any role; `fieldflash-release status` lists the targets", p)
		}
		want[p] = true
	}
	seen := map[string]bool{}
	for _, t := range targets {
		if len(want) > 0 && !want[t.Path] {
			continue
		}
		if seen[t.SHA256] {
			continue // two paths, one payload: the bundle names payloads by hash
		}
		seen[t.SHA256] = true
		file := r.PayloadPath(t.Path)
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("target %s: payload missing from %s (%v); add it again with `fieldflash-release add-target`", t.Path, filepath.Join(r.Dir, TargetsDir), err)
		}
		if fi.Size() != t.Length {
			return nil, fmt.Errorf("target %s: %s has %d bytes but the metadata lists %d; the file changed after add-target: add it again", t.Path, file, fi.Size(), t.Length)
		}
		c.Payloads = append(c.Payloads, bundle.PayloadSource{
			SHA256: t.SHA256,
			Size:   t.Length,
			Open:   func() (io.ReadCloser, error) { return os.Open(file) },
		})
	}
	if len(c.Payloads) == 0 {
		return nil, errors.New("bundle: no targets to carry; add one with `fieldflash-release add-target`")
	}
	return c, nil
}

// Bundle writes a bundle of the given target paths (all when none) to w. The same repository
// files always give the same bytes. On error what was written is not a bundle.
func (r *Repo) Bundle(w io.Writer, paths []string) error {
	c, err := r.Contents(paths)
	if err != nil {
		return err
	}
	return bundle.Write(w, c)
}

// BundleFile writes the bundle to path through a temporary file, so a failed run never
// leaves something that looks like a bundle. It returns the bundle's sha256 and size.
func (r *Repo) BundleFile(path string, paths []string) (sum string, size int64, err error) {
	c, err := r.Contents(paths)
	if err != nil {
		return "", 0, err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err = bundle.Write(cw, c); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", 0, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Inventory is what a bundle says it carries, read without trusting any of it: signatures
// are counted, not verified. verify decides trust.
type Inventory struct {
	Repository string             `json:"repository"`
	Entries    []InventoryEntry   `json:"entries"`
	Roles      []InventoryRole    `json:"roles"`
	Targets    []InventoryTarget  `json:"targets"`
	Payloads   []InventoryPayload `json:"payloads"`
}

// InventoryEntry is one archive entry.
type InventoryEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// InventoryRole is one metadata file's claims.
type InventoryRole struct {
	Role       string    `json:"role"`
	Version    int64     `json:"version"`
	Expires    time.Time `json:"expires"`
	Signatures []string  `json:"signature_key_ids"`
}

// InventoryTarget is one target listed by the bundle's targets roles.
type InventoryTarget struct {
	Path   string          `json:"path"`
	Role   string          `json:"role"`
	Length int64           `json:"length"`
	SHA256 string          `json:"sha256"`
	Custom json.RawMessage `json:"custom,omitempty"`
	// Carried says a payload with this hash is in the bundle.
	Carried bool `json:"carried"`
}

// InventoryPayload is one payload entry; HashOK says its bytes hash to its name.
type InventoryPayload struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
	HashOK bool   `json:"hash_ok"`
}

// Inspect lists a bundle's contents. It reads through bundle.Reader, so a malformed archive
// is refused with the reader's error, but it trusts nothing it reads.
func Inspect(ra io.ReaderAt, size int64) (*Inventory, error) {
	br := bundle.NewReader(ra, size, bundle.Limits{})
	md, err := br.Metadata()
	if err != nil {
		return nil, err
	}
	inv := &Inventory{}
	add := func(name, role string, data []byte) error {
		inv.Entries = append(inv.Entries, InventoryEntry{Name: bundle.MetadataDir + name, Size: int64(len(data))})
		m, err := parseRoleMeta(role, name, data)
		if err != nil {
			return err
		}
		v, exp := m.versionExpires()
		ir := InventoryRole{Role: role, Version: v, Expires: exp, Signatures: []string{}}
		for _, s := range *m.sigs() {
			ir.Signatures = append(ir.Signatures, s.KeyID)
		}
		inv.Roles = append(inv.Roles, ir)
		if m.Root != nil {
			inv.Repository = rootName(m.Root)
		}
		if m.Targets != nil {
			paths := make([]string, 0, len(m.Targets.Signed.Targets))
			for p := range m.Targets.Signed.Targets {
				paths = append(paths, p)
			}
			slices.Sort(paths)
			for _, p := range paths {
				tf := m.Targets.Signed.Targets[p]
				it := InventoryTarget{Path: p, Role: role, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
				if tf.Custom != nil {
					it.Custom = *tf.Custom
				}
				inv.Targets = append(inv.Targets, it)
			}
		}
		return nil
	}
	versions := make([]int64, 0, len(md.Roots))
	for v := range md.Roots {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	for _, v := range versions {
		if err := add(fmt.Sprintf("%d.root.json", v), metadata.ROOT, md.Roots[v]); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		role string
		data []byte
	}{{metadata.TIMESTAMP, md.Timestamp}, {metadata.SNAPSHOT, md.Snapshot}, {metadata.TARGETS, md.Targets}} {
		if err := add(f.role+".json", f.role, f.data); err != nil {
			return nil, err
		}
	}
	delegated := make([]string, 0, len(md.Delegated))
	for role := range md.Delegated {
		delegated = append(delegated, role)
	}
	slices.Sort(delegated)
	for _, role := range delegated {
		if err := add(role+".json", role, md.Delegated[role]); err != nil {
			return nil, err
		}
	}
	carried := map[string]bool{}
	for {
		p, err := br.NextPayload()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, p.R); err != nil {
			return nil, err
		}
		inv.Entries = append(inv.Entries, InventoryEntry{Name: bundle.TargetsDir + p.SHA256, Size: p.Size})
		inv.Payloads = append(inv.Payloads, InventoryPayload{SHA256: p.SHA256, Size: p.Size, Offset: p.Offset, HashOK: hex.EncodeToString(h.Sum(nil)) == p.SHA256})
		carried[p.SHA256] = true
	}
	for i := range inv.Targets {
		inv.Targets[i].Carried = carried[inv.Targets[i].SHA256]
	}
	return inv, nil
}

// String renders the inventory for people, with everything the bundle says escaped for a
// terminal (verify/untrusted).
func (inv *Inventory) String() string {
	var b strings.Builder
	untrusted.Fprintf(&b, "repository %q (as the bundle claims; not verified)\n\nentries:\n", inv.Repository)
	for _, e := range inv.Entries {
		untrusted.Fprintf(&b, "  %-60s %10d\n", e.Name, e.Size)
	}
	b.WriteString("\nroles:\n")
	for _, r := range inv.Roles {
		ids := make([]string, len(r.Signatures))
		for i, id := range r.Signatures {
			ids[i] = short(id)
		}
		untrusted.Fprintf(&b, "  %-12s v%-4d expires %s  %d signature(s) %s\n", r.Role, r.Version, r.Expires.Format(time.RFC3339), len(r.Signatures), strings.Join(ids, " "))
	}
	b.WriteString("\ntargets:\n")
	for _, t := range inv.Targets {
		carried := "carried"
		if !t.Carried {
			carried = "NOT carried"
		}
		untrusted.Fprintf(&b, "  %s  (role %s, %d bytes, sha256 %s, %s)\n", t.Path, t.Role, t.Length, t.SHA256, carried)
		if len(t.Custom) > 0 {
			var c bytes.Buffer
			if json.Compact(&c, t.Custom) != nil {
				c.Reset()
				c.WriteString("(not JSON)")
			}
			untrusted.Fprintf(&b, "    custom %s\n", c.String())
		}
	}
	b.WriteString("\npayloads:\n")
	for _, p := range inv.Payloads {
		ok := "hash ok"
		if !p.HashOK {
			ok = "HASH MISMATCH"
		}
		untrusted.Fprintf(&b, "  %s  %d bytes at offset %d, %s\n", p.SHA256, p.Size, p.Offset, ok)
	}
	return b.String()
}
