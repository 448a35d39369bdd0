// Package release keeps a vendor's TUF repository on disk and makes firmware bundles from it:
// the operations behind the fieldflash-release tool, as a Go API that the tool, the demo
// bundle generator and the tamper corpus generator share.
//
// A repository is a directory:
//
//	keys/       private (encrypted PKCS#8) and public (SPKI) key files; never committed
//	metadata/   1.root.json … N.root.json, root.json (= N), targets.json, <role>.json for
//	            delegated roles, snapshot.json, timestamp.json: standard TUF 1.0 metadata
//	targets/    the payload files, by target path
//
// Every change to signed metadata bumps its version and clears its signatures; a change to
// metadata that carries no signature yet keeps its version, so that several edits before
// signing do not leave holes (which would break the root chain). Signatures are added one key
// at a time (Sign) or gathered from copies signed elsewhere (Merge). Snapshot and Timestamp
// re-make those two roles from the files on disk; Bundle refuses to write anything a
// verifier would refuse (missing signatures, expired roles, stale snapshot).
//
// docs/release-tool.md describes the tool built on this package.
package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fieldflash/fieldflash/verify"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RepositoryField is the unrecognised field of root's signed part that names the vendor
// repository. TUF implementations keep and sign unknown fields; fieldflash shows it.
const RepositoryField = "x-fieldflash-repository"

// Folders inside a repository.
const (
	KeysDir     = "keys"
	MetadataDir = "metadata"
	TargetsDir  = "targets"
)

// Default lifetimes of roles when the caller gives none.
const (
	DefaultRootExpiry      = 365 * 24 * time.Hour
	DefaultTargetsExpiry   = 365 * 24 * time.Hour
	DefaultSnapshotExpiry  = 90 * 24 * time.Hour
	DefaultTimestampExpiry = 30 * 24 * time.Hour
)

// Repo is a repository directory. Its methods read the files on every call and write them
// back atomically, so two commands never act on stale copies.
type Repo struct {
	Dir string
	// Now is the clock used for expiry dates and checks; nil means time.Now.
	Now func() time.Time
}

// Open opens the repository in dir, which must hold metadata/root.json.
func Open(dir string) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(dir, MetadataDir, "root.json")); err != nil {
		return nil, fmt.Errorf("repository %s: no %s/root.json (%v); run `fieldflash-release init` first, or pass --repo", dir, MetadataDir, err)
	}
	return &Repo{Dir: dir}, nil
}

func (r *Repo) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// expiry turns "zero" into now+def and drops sub-second precision: TUF dates are
// YYYY-MM-DDTHH:MM:SSZ.
func (r *Repo) expiry(t time.Time, def time.Duration) time.Time {
	if t.IsZero() {
		t = r.now().Add(def)
	}
	return t.UTC().Truncate(time.Second)
}

func (r *Repo) metaPath(file string) string { return filepath.Join(r.Dir, MetadataDir, file) }

// PayloadPath is where the payload of a target path lives in the repository.
func (r *Repo) PayloadPath(targetPath string) string {
	return filepath.Join(r.Dir, TargetsDir, filepath.FromSlash(targetPath))
}

// roleFileName is the metadata file of a role (root: the newest).
func roleFileName(role string) string { return role + ".json" }

var topLevel = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

var roleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func checkDelegatedName(name string) error {
	if !roleNameRE.MatchString(name) || strings.HasSuffix(name, ".json") {
		return fmt.Errorf("role name %q: use lower-case letters, digits, '.', '_' and '-' (at most 64), e.g. \"acme-gw\"", name)
	}
	if slices.Contains(topLevel, name) {
		return fmt.Errorf("role name %q is a top-level role; pick another name for a delegation", name)
	}
	if _, err := strconv.Atoi(strings.SplitN(name, ".", 2)[0]); err == nil {
		return fmt.Errorf("role name %q starts with a number, which TUF clients read as a version prefix", name)
	}
	return nil
}

// roleMeta is one metadata file of any type, so that signing, merging and status can treat
// the four types alike.
type roleMeta struct {
	Name      string // role name
	File      string // file name in metadata/
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
}

func (m *roleMeta) signed() any {
	switch {
	case m.Root != nil:
		return m.Root.Signed
	case m.Targets != nil:
		return m.Targets.Signed
	case m.Snapshot != nil:
		return m.Snapshot.Signed
	default:
		return m.Timestamp.Signed
	}
}

func (m *roleMeta) sigs() *[]metadata.Signature {
	switch {
	case m.Root != nil:
		return &m.Root.Signatures
	case m.Targets != nil:
		return &m.Targets.Signatures
	case m.Snapshot != nil:
		return &m.Snapshot.Signatures
	default:
		return &m.Timestamp.Signatures
	}
}

func (m *roleMeta) versionExpires() (int64, time.Time) {
	switch {
	case m.Root != nil:
		return m.Root.Signed.Version, m.Root.Signed.Expires
	case m.Targets != nil:
		return m.Targets.Signed.Version, m.Targets.Signed.Expires
	case m.Snapshot != nil:
		return m.Snapshot.Signed.Version, m.Snapshot.Signed.Expires
	default:
		return m.Timestamp.Signed.Version, m.Timestamp.Signed.Expires
	}
}

func (m *roleMeta) typ() string {
	switch {
	case m.Root != nil:
		return metadata.ROOT
	case m.Targets != nil:
		return metadata.TARGETS
	case m.Snapshot != nil:
		return metadata.SNAPSHOT
	default:
		return metadata.TIMESTAMP
	}
}

func (m *roleMeta) canonical() ([]byte, error) { return cjson.EncodeCanonical(m.signed()) }

func (m *roleMeta) bytes() ([]byte, error) {
	switch {
	case m.Root != nil:
		return m.Root.ToBytes(true)
	case m.Targets != nil:
		return m.Targets.ToBytes(true)
	case m.Snapshot != nil:
		return m.Snapshot.ToBytes(true)
	default:
		return m.Timestamp.ToBytes(true)
	}
}

// parseRoleMeta reads metadata bytes of whatever type they declare.
func parseRoleMeta(name, file string, data []byte) (*roleMeta, error) {
	var head struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s: not TUF metadata: %w", file, err)
	}
	m := &roleMeta{Name: name, File: file}
	var err error
	// verify's readers: bounded before go-tuf's quadratic checks, and refusing what would
	// make go-tuf (or this tool) crash, since files come from other machines too (merge,
	// inspect).
	switch head.Signed.Type {
	case metadata.ROOT:
		m.Root, err = verify.ParseRoot(data, file)
	case metadata.TARGETS:
		m.Targets, err = verify.ParseTargets(data, file)
	case metadata.SNAPSHOT:
		m.Snapshot, err = verify.ParseSnapshot(data, file)
	case metadata.TIMESTAMP:
		m.Timestamp, err = verify.ParseTimestamp(data, file)
	default:
		return nil, fmt.Errorf("%s: unknown metadata type %q", file, head.Signed.Type)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// load reads the role's current metadata file. For root that is root.json, the newest.
func (r *Repo) load(role string) (*roleMeta, error) {
	if !slices.Contains(topLevel, role) {
		if err := checkDelegatedName(role); err != nil {
			return nil, err
		}
	}
	file := roleFileName(role)
	data, err := os.ReadFile(r.metaPath(file))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			switch role {
			case metadata.SNAPSHOT, metadata.TIMESTAMP:
				return nil, fmt.Errorf("%s: not made yet; run `fieldflash-release publish`", file)
			}
			return nil, fmt.Errorf("%s: no such role in repository %s", role, r.Dir)
		}
		return nil, err
	}
	m, err := parseRoleMeta(role, file, data)
	if err != nil {
		return nil, err
	}
	if m.typ() != role && !(m.typ() == metadata.TARGETS && !slices.Contains(topLevel, role)) {
		return nil, fmt.Errorf("%s: holds %s metadata, not %s", file, m.typ(), role)
	}
	return m, nil
}

func (r *Repo) loadRoot() (*metadata.Metadata[metadata.RootType], error) {
	m, err := r.load(metadata.ROOT)
	if err != nil {
		return nil, err
	}
	return m.Root, nil
}

func (r *Repo) loadTargets(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	m, err := r.load(role)
	if err != nil {
		return nil, err
	}
	if m.Targets == nil {
		return nil, fmt.Errorf("%s: is not a targets role", role)
	}
	return m.Targets, nil
}

// rootVersion reads N.root.json.
func (r *Repo) rootVersion(n int64) (*roleMeta, []byte, error) {
	file := fmt.Sprintf("%d.root.json", n)
	data, err := os.ReadFile(r.metaPath(file))
	if err != nil {
		return nil, nil, err
	}
	m, err := parseRoleMeta(metadata.ROOT, file, data)
	if err != nil {
		return nil, nil, err
	}
	if m.Root == nil || m.Root.Signed.Version != n {
		return nil, nil, fmt.Errorf("%s: is not root version %d", file, n)
	}
	return m, data, nil
}

// save writes a role's metadata; root goes to N.root.json and root.json.
func (r *Repo) save(m *roleMeta) error {
	data, err := m.bytes()
	if err != nil {
		return err
	}
	if m.Root != nil {
		if err := writeFileAtomic(r.metaPath(fmt.Sprintf("%d.root.json", m.Root.Signed.Version)), data, 0o644); err != nil {
			return err
		}
		return writeFileAtomic(r.metaPath("root.json"), data, 0o644)
	}
	return writeFileAtomic(r.metaPath(m.File), data, 0o644)
}

func (r *Repo) saveRoot(m *metadata.Metadata[metadata.RootType]) error {
	return r.save(&roleMeta{Name: metadata.ROOT, File: "root.json", Root: m})
}

func (r *Repo) saveTargets(role string, m *metadata.Metadata[metadata.TargetsType]) error {
	return r.save(&roleMeta{Name: role, File: roleFileName(role), Targets: m})
}

// change is the version rule: signed metadata gets a new version without signatures;
// unsigned metadata is still being edited and keeps its version.
func change(sigs *[]metadata.Signature, version *int64) {
	if len(*sigs) > 0 {
		*version++
		*sigs = []metadata.Signature{}
	}
}

// writeFileAtomic replaces path so that a crash leaves the old or the new file, never half.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// rootVersions lists the versions of N.root.json present, ascending.
func (r *Repo) rootVersions() ([]int64, error) {
	entries, err := os.ReadDir(filepath.Join(r.Dir, MetadataDir))
	if err != nil {
		return nil, err
	}
	var vs []int64
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 1 {
			continue
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs, nil
}

// targetsRole is one targets-type role found by walking the delegation graph.
type targetsRole struct {
	Name      string
	Delegator string
	Meta      *metadata.Metadata[metadata.TargetsType]
}

// targetsRoles walks the delegations from targets in TUF's pre-order (the order a client
// searches for a target), each role once.
func (r *Repo) targetsRoles() ([]targetsRole, error) {
	top, err := r.loadTargets(metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	var out []targetsRole
	seen := map[string]bool{metadata.TARGETS: true}
	var walk func(tr targetsRole) error
	walk = func(tr targetsRole) error {
		out = append(out, tr)
		if tr.Meta.Signed.Delegations == nil {
			return nil
		}
		for _, d := range tr.Meta.Signed.Delegations.Roles {
			if seen[d.Name] {
				continue
			}
			seen[d.Name] = true
			m, err := r.loadTargets(d.Name)
			if err != nil {
				return fmt.Errorf("role %s (delegated by %s): %w", d.Name, tr.Name, err)
			}
			if err := walk(targetsRole{Name: d.Name, Delegator: tr.Name, Meta: m}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(targetsRole{Name: metadata.TARGETS, Delegator: metadata.ROOT, Meta: top}); err != nil {
		return nil, err
	}
	return out, nil
}

// findDelegation returns the delegator's metadata and the index of role in its delegations.
func (r *Repo) findDelegation(role string) (string, *metadata.Metadata[metadata.TargetsType], int, error) {
	roles, err := r.targetsRoles()
	if err != nil {
		return "", nil, 0, err
	}
	for _, tr := range roles {
		if tr.Meta.Signed.Delegations == nil {
			continue
		}
		for i, d := range tr.Meta.Signed.Delegations.Roles {
			if d.Name == role {
				return tr.Name, tr.Meta, i, nil
			}
		}
	}
	return "", nil, 0, fmt.Errorf("role %s: no such role; top-level roles are root, targets, snapshot, timestamp, and `fieldflash-release delegate` makes others", role)
}

// Name is the vendor repository name stored in root.
func (r *Repo) Name() (string, error) {
	root, err := r.loadRoot()
	if err != nil {
		return "", err
	}
	return rootName(root), nil
}

func rootName(root *metadata.Metadata[metadata.RootType]) string {
	if s, ok := root.Signed.UnrecognizedFields[RepositoryField].(string); ok {
		return s
	}
	return ""
}

// sortSignatures keeps signature order independent of who signed first, so that the same
// signatures always give the same bytes.
func sortSignatures(sigs []metadata.Signature) {
	sort.Slice(sigs, func(i, j int) bool { return sigs[i].KeyID < sigs[j].KeyID })
}

// RoleFile reads the raw bytes of a role's current metadata file (root: the newest).
func (r *Repo) RoleFile(role string) ([]byte, error) {
	return os.ReadFile(r.metaPath(roleFileName(role)))
}

func equalJSON(a, b any) bool {
	x, err1 := cjson.EncodeCanonical(a)
	y, err2 := cjson.EncodeCanonical(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
