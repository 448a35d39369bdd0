package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

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

// KeySummary is one public key: its TUF key id (the fingerprint to compare out of band
// with the vendor's published one) and its type.
type KeySummary struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Scheme string `json:"scheme"`
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
	if _, err := trustedmetadata.New(data); err != nil {
		return nil, fmt.Errorf("not a valid self-signed TUF root: %v; ask the vendor for their root.json and compare its key ids with the ones they publish", err)
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("not a TUF root: %v", err)
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
		s.Keys = append(s.Keys, KeySummary{ID: id, Type: k.Type, Scheme: k.Scheme})
	}
	sort.Slice(s.Keys, func(i, j int) bool { return s.Keys[i].ID < s.Keys[j].ID })
	return s, nil
}

func validName(name string) error {
	if !plainName.MatchString(name) {
		return fmt.Errorf("repository name %q: use letters, digits, '.', '_' or '-' (at most 101), starting with a letter or digit; pass --name", name)
	}
	return nil
}

func (t *TrustStore) path(name string) string { return filepath.Join(t.dir, name+".root.json") }

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
	// One repository, one pin: the remembered newest metadata that stops rollbacks is kept
	// per pin, so the same root under a second name would start from nothing.
	keys := rootKeys(data)
	if id := sharedKey(keys, assets.DemoRoot); id != "" {
		return fmt.Errorf("this is the demo root (root key %s): its keys are public, so it is trusted only in demo mode (`fieldflash demo`, `--demo`) and cannot be pinned", short(id))
	}
	pinned, err := t.Roots()
	if err != nil {
		return err
	}
	for _, p := range pinned {
		if id := sharedKey(keys, p.Root); id != "" {
			return fmt.Errorf("this root shares root key %s with repository %q, which is already pinned: it is the same repository, and bundles move it to newer roots by themselves; nothing to add", short(id), p.Name)
		}
	}
	return writeFileAtomic(t.path(name), data, 0o600)
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
	return st.Forget(name)
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
		name, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok || e.IsDir() {
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

// rootKeys returns the key ids of a root's root role.
func rootKeys(data []byte) map[string]bool {
	root, err := metadata.Root().FromBytes(data)
	if err != nil || root.Signed.Roles[metadata.ROOT] == nil {
		return nil
	}
	ids := map[string]bool{}
	for _, id := range root.Signed.Roles[metadata.ROOT].KeyIDs {
		ids[id] = true
	}
	return ids
}

// sharedKey returns a root key id that keys and the root in other have in common.
func sharedKey(keys map[string]bool, other []byte) string {
	for id := range rootKeys(other) {
		if keys[id] {
			return id
		}
	}
	return ""
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
