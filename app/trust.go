package app

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/verify"
)

// RepositoryField is the unrecognised signed field of root.json in which fieldflash's
// release tool names the repository (vendor). Roots from other TUF tools lack it; then the
// name comes from the user or the file name.
const RepositoryField = "x-fieldflash-repository"

// TrustStore is the set of pinned roots: those built into the binary and those the user
// added under $FIELDFLASH_HOME/trust.
type TrustStore struct {
	home string
	dir  string
}

// Source says where a pinned root comes from.
type Source string

// Where pinned roots come from.
const (
	SourceEmbedded Source = "embedded" // built into this binary (assets/roots)
	SourceUser     Source = "user"     // added with `fieldflash trust add`
	SourceDemo     Source = "demo"     // the demo root, trusted in demo mode only
)

// RootSummary is what a person needs to decide whether to pin a root.
type RootSummary struct {
	Name    string       `json:"name"`
	Source  Source       `json:"source,omitempty"`
	Version int64        `json:"version"`
	Expires time.Time    `json:"expires"`
	Roles   []RoleKeys   `json:"roles"`
	Keys    []KeySummary `json:"keys"`
}

// RoleKeys lists the keys of one top-level role and its threshold.
type RoleKeys struct {
	Role      string   `json:"role"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"key_ids"`
}

// KeySummary is one public key: its TUF key id (the hex SHA-256 of the key's canonical
// JSON, checked to be computed from the key) and the fingerprint of its key material (the
// hex SHA-256 of its DER SubjectPublicKeyInfo), to compare out of band with what the
// vendor publishes.
type KeySummary struct {
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
	Type        string `json:"type"`
	Scheme      string `json:"scheme"`
}

// OpenTrustStore opens the trust store under home.
func OpenTrustStore(home string) (*TrustStore, error) {
	dir := filepath.Join(home, "trust")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("trust store %s: %v; check that %s is writable or set %s", dir, err, home, HomeEnv)
	}
	return &TrustStore{home: home, dir: dir}, nil
}

// InspectRoot parses a root.json, checks that it is signed by its own root threshold (a
// root that cannot vouch for itself is never pinned), and summarises it. name overrides
// the repository name the root carries.
func InspectRoot(data []byte, name string) (*RootSummary, error) {
	root, err := verify.CheckRoot(data)
	if err != nil {
		var ve *verify.Error
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%s; %s", ve.Reason, ve.Next)
		}
		return nil, err
	}
	if name == "" {
		if raw, ok := root.Signed.UnrecognizedFields[RepositoryField]; ok {
			if s, ok := raw.(string); ok {
				name = s
			}
		}
	}
	s := &RootSummary{Name: name, Version: root.Signed.Version, Expires: root.Signed.Expires}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r := root.Signed.Roles[role]
		if r == nil {
			return nil, fmt.Errorf("root has no %s role", role)
		}
		ids := append([]string(nil), r.KeyIDs...)
		sort.Strings(ids)
		s.Roles = append(s.Roles, RoleKeys{Role: role, Threshold: r.Threshold, KeyIDs: ids})
	}
	for id, k := range root.Signed.Keys {
		fp, err := verify.KeyFingerprint(k)
		if err != nil {
			return nil, fmt.Errorf("key %s: %v; ask the vendor for a root made by a TUF tool", short(id), err)
		}
		s.Keys = append(s.Keys, KeySummary{ID: id, Fingerprint: fp, Type: k.Type, Scheme: k.Scheme})
	}
	sort.Slice(s.Keys, func(i, j int) bool { return s.Keys[i].ID < s.Keys[j].ID })
	return s, nil
}

// A repository name is kept as the vendor wrote it ("Python Vendor C" stays that, it is
// never rewritten): any text of 1 to 100 characters without control or format characters.
// Names that are not plain file names are stored hex-encoded.
func validName(name string) error {
	switch {
	case name == "" || utf8.RuneCountInString(name) > 100:
		return fmt.Errorf("repository name %q: give 1 to 100 characters with --name", Text(name))
	case !utf8.ValidString(name) || Text(name) != name:
		return fmt.Errorf("repository name %q holds control characters or a backslash; pass --name with a plain name", Text(name))
	}
	return nil
}

// NameFromFile is the repository name a root without one is pinned under when the user
// gives none: its file name without ".json" or ".root.json". The standard TUF names
// (root.json, 1.root.json, ...) say nothing about the vendor, and two vendors' would
// collide, so they are refused: the user names the repository with --name.
func NameFromFile(file string) (string, error) {
	base := filepath.Base(file)
	if stdRootFile.MatchString(base) {
		return "", fmt.Errorf("this root names no repository (no %s field), and %s is a standard TUF file name that would collide with another vendor's; pass --name VENDOR", RepositoryField, Text(base))
	}
	name := strings.TrimSuffix(strings.TrimSuffix(base, ".json"), ".root")
	if err := validName(name); err != nil {
		return "", err
	}
	return name, nil
}

var stdRootFile = regexp.MustCompile(`^([0-9]+\.)?root\.json$`)

// storeFile is the trust store's file for name: readable for plain names, hex otherwise.
func storeFile(name string) string {
	if plainName.MatchString(name) && !windowsDevice(name) {
		return name + ".root.json"
	}
	return "x-" + hex.EncodeToString([]byte(name)) + ".root.json"
}

// nameOfStoreFile is the repository name a trust store file holds, or "" for other files.
func nameOfStoreFile(file string) string {
	base, ok := strings.CutSuffix(file, ".root.json")
	if !ok || base == "" {
		return ""
	}
	if enc, ok := strings.CutPrefix(base, "x-"); ok {
		if b, err := hex.DecodeString(enc); err == nil {
			return string(b)
		}
	}
	return base
}

func (t *TrustStore) path(name string) string { return filepath.Join(t.dir, storeFile(name)) }

// Add pins a root under name. It refuses to replace a pinned root silently: a root for the
// same repository only moves forward through the root chain carried by bundles.
func (t *TrustStore) Add(name string, data []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	if _, err := InspectRoot(data, name); err != nil {
		return err
	}
	for _, e := range assets.EmbeddedRoots() {
		if e.Name == name {
			return fmt.Errorf("repository %q is already pinned inside this build of fieldflash; nothing to add", name)
		}
	}
	if _, err := os.Stat(t.path(name)); err == nil {
		return fmt.Errorf("repository %q is already pinned; run `fieldflash trust remove %s` first if you really mean to replace its root", name, name)
	}
	// Keys are compared by key material, never by id: one key can be listed under several
	// ids (another scheme string, an extra field).
	root, err := verify.CheckRoot(data)
	if err != nil {
		return err
	}
	demo, _ := verify.CheckRoot(assets.DemoRoot)
	if id, ok := sharedKey(root, demo, false); ok {
		return fmt.Errorf("this root holds a key of the demo root (key %s): the demo keys are public, so anything they sign is trusted only in demo mode (`fieldflash demo`, `--demo`); it cannot be pinned", short(id))
	}
	// One repository, one pin: the remembered newest metadata that stops rollbacks is kept
	// per pin, so the same root under a second name would start from nothing.
	pinned, err := t.Roots()
	if err != nil {
		return err
	}
	for _, p := range pinned {
		other, err := verify.CheckRoot(p.Root)
		if err != nil {
			continue
		}
		if id, ok := sharedKey(root, other, true); ok {
			return fmt.Errorf("this root shares root key %s with repository %q, which is already pinned: it is the same repository, and bundles move it to newer roots by themselves; nothing to add", short(id), p.Name)
		}
	}
	if err := writeFileAtomic(t.path(name), data, 0o600); err != nil {
		return err
	}
	detail := fmt.Sprintf("pinned root %q", name)
	if sum, err := InspectRoot(data, name); err == nil {
		var fps []string
		for _, k := range sum.Keys {
			fps = append(fps, short(k.Fingerprint))
		}
		detail += fmt.Sprintf(" v%d, keys %s", sum.Version, strings.Join(fps, ", "))
	}
	return t.auditChange(name, detail)
}

// auditChange records a trust change in the audit log. The pin is made: an audit log that
// cannot be written is reported as an error all the same, so the person knows.
func (t *TrustStore) auditChange(name, detail string) error {
	l, err := audit.Open(AuditPath(t.home))
	if err == nil {
		_, err = l.Append(audit.Entry{Kind: audit.KindTrustChange, AppVersion: Version, Operator: Operator(),
			Repository: name, Outcome: audit.OutcomeOK, Detail: detail})
		l.Close()
	}
	if err != nil {
		return fmt.Errorf("%s, but the audit log could not record it: %v", detail, err)
	}
	return nil
}

// Remove unpins a user-added root and forgets what was learned under it: the newest root,
// timestamp, snapshot and targets remembered for that repository. After a key compromise a
// vendor tells its customers to remove the old root and pin a fresh one; a remembered
// newest root of the old chain must not outlive the pin.
func (t *TrustStore) Remove(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	for _, e := range assets.EmbeddedRoots() {
		if e.Name == name {
			return fmt.Errorf("repository %q is built into this fieldflash and cannot be removed", name)
		}
	}
	err := os.Remove(t.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("repository %q is not pinned; `fieldflash trust list` shows what is", name)
	}
	if err != nil {
		return err
	}
	if err := syncDir(t.dir); err != nil {
		return err
	}
	st, err := NewDiskState(t.home)
	if err != nil {
		return err
	}
	if err := st.Forget(name); err != nil {
		return err
	}
	return t.auditChange(name, fmt.Sprintf("unpinned root %q and forgot the metadata remembered under it", name))
}

// List summarises every pinned root, embedded ones first.
func (t *TrustStore) List() ([]RootSummary, error) {
	var out []RootSummary
	for _, e := range assets.EmbeddedRoots() {
		s, err := InspectRoot(e.Root, e.Name)
		if err != nil {
			return nil, fmt.Errorf("embedded root %s: %v", e.Name, err)
		}
		s.Source = SourceEmbedded
		out = append(out, *s)
	}
	roots, err := t.userRoots()
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		s, err := InspectRoot(r.Root, r.Name)
		if err != nil {
			return nil, fmt.Errorf("pinned root %s: %v; remove it with `fieldflash trust remove %s`", t.path(r.Name), err, r.Name)
		}
		s.Source = SourceUser
		out = append(out, *s)
	}
	return out, nil
}

func (t *TrustStore) userRoots() ([]verify.PinnedRoot, error) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, err
	}
	var out []verify.PinnedRoot
	for _, e := range entries {
		name := nameOfStoreFile(e.Name())
		if name == "" || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(t.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, verify.PinnedRoot{Name: name, Root: data})
	}
	return out, nil
}

// Roots returns every pinned root for verification.
func (t *TrustStore) Roots() ([]verify.PinnedRoot, error) {
	var out []verify.PinnedRoot
	for _, e := range assets.EmbeddedRoots() {
		out = append(out, verify.PinnedRoot{Name: e.Name, Root: e.Root})
	}
	user, err := t.userRoots()
	if err != nil {
		return nil, err
	}
	return append(out, user...), nil
}

// sharedKey returns the id (in root) of a key that root and other both hold, compared by
// key material: among their root-role keys when rootRole is set, else among all their keys.
func sharedKey(root, other *metadata.Metadata[metadata.RootType], rootRole bool) (string, bool) {
	if root == nil || other == nil {
		return "", false
	}
	fingerprints := func(r *metadata.Metadata[metadata.RootType]) map[string]string {
		ids := slices.Collect(maps.Keys(r.Signed.Keys))
		if rootRole {
			ids = r.Signed.Roles[metadata.ROOT].KeyIDs
		}
		out := map[string]string{}
		for _, id := range ids {
			if k := r.Signed.Keys[id]; k != nil {
				if fp, err := verify.KeyFingerprint(k); err == nil {
					out[fp] = id
				}
			}
		}
		return out
	}
	theirs := fingerprints(other)
	mine := fingerprints(root)
	for _, fp := range slices.Sorted(maps.Keys(mine)) {
		if theirs[fp] != "" {
			return mine[fp], true
		}
	}
	return "", false
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
