package release

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RoleKeys are the keys of one role and how many of them must sign.
type RoleKeys struct {
	Keys      []*metadata.Key
	Threshold int
}

func (rk RoleKeys) check(role string) error {
	if len(rk.Keys) == 0 {
		return fmt.Errorf("role %s: no keys given; pass at least one public key", role)
	}
	seen := map[string]bool{}
	for _, k := range rk.Keys {
		id := KeyID(k)
		if seen[id] {
			return fmt.Errorf("role %s: key %s given twice; each key counts once toward the threshold", role, short(id))
		}
		seen[id] = true
	}
	if rk.Threshold < 1 || rk.Threshold > len(rk.Keys) {
		return fmt.Errorf("role %s: threshold %d with %d keys; pick a threshold from 1 to %d", role, rk.Threshold, len(rk.Keys), len(rk.Keys))
	}
	return nil
}

// InitOptions describe a new repository.
type InitOptions struct {
	// Name is the vendor repository name, stored in root as RepositoryField.
	Name                               string
	Root, Targets, Snapshot, Timestamp RoleKeys
	// RootExpires and TargetsExpires: zero means the defaults from now.
	RootExpires, TargetsExpires time.Time
	// Now is the clock (nil: time.Now); it becomes the Repo's clock.
	Now func() time.Time
}

// Init makes a new repository in dir (which may exist but must not hold metadata): root
// version 1 and an empty targets role, both unsigned. Sign them, then publish.
func Init(dir string, o InitOptions) (*Repo, error) {
	if o.Name == "" {
		return nil, errors.New("init: no repository name; pass --name VENDOR (the name technicians see, e.g. \"Acme Devices\")")
	}
	for _, c := range []struct {
		role string
		rk   RoleKeys
	}{{metadata.ROOT, o.Root}, {metadata.TARGETS, o.Targets}, {metadata.SNAPSHOT, o.Snapshot}, {metadata.TIMESTAMP, o.Timestamp}} {
		if err := c.rk.check(c.role); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, MetadataDir, "root.json")); err == nil {
		return nil, fmt.Errorf("init: %s already holds a repository; use another directory", dir)
	}
	r := &Repo{Dir: dir, Now: o.Now}
	for _, d := range []string{KeysDir, MetadataDir, TargetsDir} {
		perm := os.FileMode(0o755)
		if d == KeysDir {
			perm = 0o700
		}
		if err := os.MkdirAll(filepath.Join(dir, d), perm); err != nil {
			return nil, err
		}
	}

	// keys/ sits beside metadata/ for convenience; git must never pick it up.
	ignore := filepath.Join(dir, ".gitignore")
	if _, err := os.Stat(ignore); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(ignore, []byte("# private keys never leave the key holder's machine\n/"+KeysDir+"/\n"), 0o644); err != nil {
			return nil, err
		}
	}

	root := metadata.Root(r.expiry(o.RootExpires, DefaultRootExpiry))
	// The repository is read as files and bundles, not served with version-prefixed names.
	root.Signed.ConsistentSnapshot = false
	root.Signed.UnrecognizedFields = map[string]any{RepositoryField: o.Name}
	for role, rk := range map[string]RoleKeys{metadata.ROOT: o.Root, metadata.TARGETS: o.Targets, metadata.SNAPSHOT: o.Snapshot, metadata.TIMESTAMP: o.Timestamp} {
		for _, k := range rk.Keys {
			if err := root.Signed.AddKey(k, role); err != nil {
				return nil, err
			}
		}
		root.Signed.Roles[role].Threshold = rk.Threshold
	}
	if err := r.saveRoot(root); err != nil {
		return nil, err
	}
	targets := metadata.Targets(r.expiry(o.TargetsExpires, DefaultTargetsExpiry))
	if err := r.saveTargets(metadata.TARGETS, targets); err != nil {
		return nil, err
	}
	return r, nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
