package release

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// metaFile describes a metadata file for snapshot or timestamp: version, length, sha256.
func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

func sameMetaFile(a, b *metadata.MetaFiles) bool {
	return a != nil && b != nil && a.Version == b.Version && a.Length == b.Length &&
		bytes.Equal(a.Hashes["sha256"], b.Hashes["sha256"]) && len(a.Hashes) == len(b.Hashes)
}

// snapshotMeta is what snapshot.json must list for the targets roles on disk now.
func (r *Repo) snapshotMeta() (map[string]*metadata.MetaFiles, error) {
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	meta := map[string]*metadata.MetaFiles{}
	for _, tr := range roles {
		data, err := r.RoleFile(tr.Name)
		if err != nil {
			return nil, err
		}
		meta[roleFileName(tr.Name)] = metaFile(tr.Meta.Signed.Version, data)
	}
	return meta, nil
}

// freshness says, per role, whether snapshot and timestamp still describe the files on disk.
func (r *Repo) freshness() (map[string]string, error) {
	out := map[string]string{}
	want, err := r.snapshotMeta()
	if err != nil {
		return nil, err
	}
	snap, err := r.load(metadata.SNAPSHOT)
	if err != nil {
		return out, nil // status reports the missing file itself
	}
	var stale []string
	for file, w := range want {
		have := snap.Snapshot.Signed.Meta[file]
		switch {
		case have == nil:
			stale = append(stale, file+" is not listed")
		case have.Version != w.Version:
			stale = append(stale, fmt.Sprintf("lists %s v%d, the file is v%d", file, have.Version, w.Version))
		case !sameMetaFile(have, w):
			stale = append(stale, file+" changed (signatures added?)")
		}
	}
	for file := range snap.Snapshot.Signed.Meta {
		if want[file] == nil {
			stale = append(stale, "lists "+file+", which no role delegates any more")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		out[metadata.SNAPSHOT] = "out of date: " + strings.Join(stale, "; ") + "; run `fieldflash-release publish`"
	}
	ts, err := r.load(metadata.TIMESTAMP)
	if err != nil {
		return out, nil
	}
	data, err := r.RoleFile(metadata.SNAPSHOT)
	if err != nil {
		return nil, err
	}
	if !sameMetaFile(ts.Timestamp.Signed.Meta["snapshot.json"], metaFile(snap.Snapshot.Signed.Version, data)) {
		out[metadata.TIMESTAMP] = "out of date: snapshot.json changed since; run `fieldflash-release publish`"
	}
	return out, nil
}

// Snapshot re-makes snapshot.json from the targets roles on disk and signs it with keys.
// When nothing changed and no expiry is given the file stays as it is (keys still sign it).
// expires zero means DefaultSnapshotExpiry from now for a changed snapshot.
func (r *Repo) Snapshot(expires time.Time, keys ...*SigningKey) error {
	want, err := r.snapshotMeta()
	if err != nil {
		return err
	}
	m, err := r.load(metadata.SNAPSHOT)
	if err != nil {
		m = &roleMeta{Name: metadata.SNAPSHOT, File: "snapshot.json", Snapshot: metadata.Snapshot(r.expiry(expires, DefaultSnapshotExpiry))}
		m.Snapshot.Signed.Meta = want
	} else if s := m.Snapshot; !equalJSON(s.Signed.Meta, want) || !expires.IsZero() {
		change(&s.Signatures, &s.Signed.Version)
		s.Signed.Meta = want
		s.Signed.Expires = r.expiry(expires, DefaultSnapshotExpiry)
	}
	if err := r.save(m); err != nil {
		return err
	}
	if len(keys) > 0 {
		return r.Sign(metadata.SNAPSHOT, keys...)
	}
	return nil
}

// Timestamp re-makes timestamp.json from snapshot.json as on disk, like Snapshot.
func (r *Repo) Timestamp(expires time.Time, keys ...*SigningKey) error {
	snap, err := r.load(metadata.SNAPSHOT)
	if err != nil {
		return err
	}
	data, err := r.RoleFile(metadata.SNAPSHOT)
	if err != nil {
		return err
	}
	want := map[string]*metadata.MetaFiles{"snapshot.json": metaFile(snap.Snapshot.Signed.Version, data)}
	m, err := r.load(metadata.TIMESTAMP)
	if err != nil {
		m = &roleMeta{Name: metadata.TIMESTAMP, File: "timestamp.json", Timestamp: metadata.Timestamp(r.expiry(expires, DefaultTimestampExpiry))}
		m.Timestamp.Signed.Meta = want
	} else if t := m.Timestamp; !equalJSON(t.Signed.Meta, want) || !expires.IsZero() {
		change(&t.Signatures, &t.Signed.Version)
		t.Signed.Meta = want
		t.Signed.Expires = r.expiry(expires, DefaultTimestampExpiry)
	}
	if err := r.save(m); err != nil {
		return err
	}
	if len(keys) > 0 {
		return r.Sign(metadata.TIMESTAMP, keys...)
	}
	return nil
}

// PublishOptions are the keys and lifetimes for Publish.
type PublishOptions struct {
	SnapshotKeys, TimestampKeys       []*SigningKey
	SnapshotExpires, TimestampExpires time.Time
}

// Publish re-makes and signs snapshot and timestamp once root and the targets roles carry
// their signatures, then checks the repository as a verifier would.
func (r *Repo) Publish(o PublishOptions) error {
	st, err := r.Status()
	if err != nil {
		return err
	}
	for _, rs := range st.Roles {
		if rs.Role == metadata.SNAPSHOT || rs.Role == metadata.TIMESTAMP {
			continue
		}
		if len(rs.Problems) > 0 {
			return fmt.Errorf("%s: %s", rs.File, rs.Problems[0])
		}
	}
	if err := r.Snapshot(o.SnapshotExpires, o.SnapshotKeys...); err != nil {
		return err
	}
	if err := r.Timestamp(o.TimestampExpires, o.TimestampKeys...); err != nil {
		return err
	}
	return r.Check()
}

// Check refuses, with the first problem and its next step, a repository that a verifier would
// refuse at this repository's clock: missing signatures, expired roles, stale snapshot or
// timestamp. After its own checks it walks the metadata with go-tuf's trustedmetadata, the
// same code verify uses, so the two cannot disagree unnoticed.
func (r *Repo) Check() error {
	st, err := r.Status()
	if err != nil {
		return err
	}
	for _, rs := range st.Roles {
		if len(rs.Problems) > 0 {
			return fmt.Errorf("%s: %s", rs.File, rs.Problems[0])
		}
	}
	_, err = r.trusted()
	return err
}

// trusted loads the whole repository through trustedmetadata, from 1.root.json.
func (r *Repo) trusted() (*trustedmetadata.TrustedMetadata, error) {
	versions, err := r.rootVersions()
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 || versions[0] != 1 {
		return nil, errors.New("metadata: 1.root.json is missing; the root chain must start at version 1")
	}
	read := func(file string) ([]byte, error) { return os.ReadFile(r.metaPath(file)) }
	first, err := read("1.root.json")
	if err != nil {
		return nil, err
	}
	tm, err := trustedmetadata.New(first)
	if err != nil {
		return nil, fmt.Errorf("1.root.json: %w", err)
	}
	tm.RefTime = r.now()
	for _, v := range versions[1:] {
		data, err := read(fmt.Sprintf("%d.root.json", v))
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return nil, fmt.Errorf("%d.root.json: %w", v, err)
		}
	}
	steps := []struct {
		file string
		do   func([]byte) error
	}{
		{"timestamp.json", func(b []byte) error { _, err := tm.UpdateTimestamp(b); return err }},
		{"snapshot.json", func(b []byte) error { _, err := tm.UpdateSnapshot(b, false); return err }},
		{"targets.json", func(b []byte) error { _, err := tm.UpdateTargets(b); return err }},
	}
	for _, s := range steps {
		data, err := read(s.file)
		if err != nil {
			return nil, err
		}
		if err := s.do(data); err != nil {
			return nil, fmt.Errorf("%s: %w", s.file, err)
		}
	}
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	for _, tr := range roles[1:] {
		data, err := r.RoleFile(tr.Name)
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateDelegatedTargets(data, tr.Name, tr.Delegator); err != nil {
			return nil, fmt.Errorf("%s: %w", roleFileName(tr.Name), err)
		}
	}
	return tm, nil
}
