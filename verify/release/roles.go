package release

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
)

// Delegation hands a set of target paths to a role with its own keys: per product or per
// release signing keys.
type Delegation struct {
	Name string
	// Delegator is the targets role that delegates; "targets" when empty.
	Delegator string
	RoleKeys
	// Paths are TUF path patterns, e.g. "acme-gw/*".
	Paths []string
	// Terminating stops clients from looking further for these paths if this role does not
	// list a target: a compromised later role cannot then add one.
	Terminating bool
	// Expires is the delegated role's expiry when it is made; zero means the default.
	Expires time.Time
	// HardwareIDs, when set, confine the role to these hardware ids (verify.HardwareField,
	// signed by the delegator): every target it signs, directly or through roles it
	// delegates to, may list only these. A product key then cannot sign for other boards.
	HardwareIDs []string
}

// Delegate adds the delegation to its delegator, or replaces keys, threshold, paths and
// terminating of an existing one (the way to rotate or revoke a delegated key), and makes
// the delegated role's metadata if it has none yet.
func (r *Repo) Delegate(d Delegation) error {
	if err := checkDelegatedName(d.Name); err != nil {
		return err
	}
	if err := d.RoleKeys.check(d.Name); err != nil {
		return err
	}
	if len(d.Paths) == 0 {
		return fmt.Errorf("role %s: no paths; pass --paths 'PRODUCT/*' for the targets it may sign", d.Name)
	}
	for _, p := range d.Paths {
		if p == "" || strings.HasPrefix(p, "/") {
			return fmt.Errorf("role %s: path pattern %q: write it relative, e.g. 'acme-gw/*'", d.Name, p)
		}
	}
	if d.Delegator == "" {
		d.Delegator = metadata.TARGETS
	}
	if d.Delegator == d.Name {
		return fmt.Errorf("role %s cannot delegate to itself", d.Name)
	}
	if other, _, _, err := r.findDelegation(d.Name); err == nil && other != d.Delegator {
		return fmt.Errorf("role %s: already delegated by %s; change it there (--from %s)", d.Name, other, other)
	}
	parent, err := r.loadTargets(d.Delegator)
	if err != nil {
		return err
	}
	ds := parent.Signed.Delegations
	if ds == nil {
		ds = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		parent.Signed.Delegations = ds
	}
	if ds.SuccinctRoles != nil {
		return fmt.Errorf("role %s: %s uses succinct (hash-bin) delegations, which this tool does not edit", d.Name, d.Delegator)
	}
	for _, hw := range d.HardwareIDs {
		if strings.TrimSpace(hw) == "" {
			return fmt.Errorf("role %s: an empty hardware id; pass --hardware ID for each board the role may sign for", d.Name)
		}
	}
	role := metadata.DelegatedRole{Name: d.Name, Threshold: d.Threshold, Terminating: d.Terminating, Paths: slices.Clone(d.Paths)}
	if len(d.HardwareIDs) > 0 {
		ids := make([]any, len(d.HardwareIDs))
		for i, hw := range d.HardwareIDs {
			ids[i] = hw
		}
		role.UnrecognizedFields = map[string]any{verify.HardwareField: ids}
	}
	for _, k := range d.Keys {
		id := KeyID(k)
		role.KeyIDs = append(role.KeyIDs, id)
		ds.Keys[id] = k
	}
	before := cloneJSON(ds)
	i := slices.IndexFunc(ds.Roles, func(x metadata.DelegatedRole) bool { return x.Name == d.Name })
	if i < 0 {
		ds.Roles = append(ds.Roles, role)
	} else {
		ds.Roles[i] = role
	}
	pruneDelegationKeys(ds)
	if i < 0 || !equalJSON(before, ds) {
		change(&parent.Signatures, &parent.Signed.Version)
		if err := r.saveTargets(d.Delegator, parent); err != nil {
			return err
		}
	}

	if _, err := r.loadTargets(d.Name); err == nil {
		return nil
	}
	return r.saveTargets(d.Name, metadata.Targets(r.expiry(d.Expires, DefaultTargetsExpiry)))
}

func cloneJSON(ds *metadata.Delegations) any {
	b, _ := (&metadata.Metadata[metadata.TargetsType]{Signed: metadata.TargetsType{Delegations: ds}}).ToBytes(false)
	return string(b)
}

// pruneDelegationKeys drops keys no delegated role names any more.
func pruneDelegationKeys(ds *metadata.Delegations) {
	used := map[string]bool{}
	for _, role := range ds.Roles {
		for _, id := range role.KeyIDs {
			used[id] = true
		}
	}
	for id := range ds.Keys {
		if !used[id] {
			delete(ds.Keys, id)
		}
	}
}

// RootChange changes the keys of a top-level role, which makes a new root version. The new
// root must be signed by a threshold of the old root keys and a threshold of the new ones
// (Sign with keys of both), so that every client can walk the chain.
type RootChange struct {
	// Role whose keys change: "root" when empty, or targets, snapshot, timestamp.
	Role string
	Add  []*metadata.Key
	// Remove lists key ids.
	Remove []string
	// Threshold is the role's new threshold; 0 keeps it.
	Threshold int
	// Expires is the new root's expiry; zero keeps the current one.
	Expires time.Time
}

// ChangeRoot makes the next root version (or edits the newest one in place while it is
// still unsigned) and returns its version.
func (r *Repo) ChangeRoot(c RootChange) (int64, error) {
	if c.Role == "" {
		c.Role = metadata.ROOT
	}
	root, err := r.loadRoot()
	if err != nil {
		return 0, err
	}
	role, ok := root.Signed.Roles[c.Role]
	if !ok {
		return 0, fmt.Errorf("role %s: not a top-level role; root names root, targets, snapshot and timestamp (delegated roles change with `delegate` or `revoke-key`)", c.Role)
	}
	if len(c.Add) == 0 && len(c.Remove) == 0 && c.Threshold == 0 && c.Expires.IsZero() {
		return 0, fmt.Errorf("root: nothing to change; pass keys to add or remove, a threshold or an expiry")
	}
	change(&root.Signatures, &root.Signed.Version)
	for _, id := range c.Remove {
		id = r.expandKeyID(root.Signed.Roles[c.Role].KeyIDs, id)
		if err := root.Signed.RevokeKey(id, c.Role); err != nil {
			return 0, fmt.Errorf("role %s: key %s: not one of its keys; `fieldflash-release status` lists them", c.Role, id)
		}
	}
	for _, k := range c.Add {
		if slices.Contains(role.KeyIDs, KeyID(k)) {
			return 0, fmt.Errorf("role %s: key %s is already one of its keys", c.Role, short(KeyID(k)))
		}
		if err := root.Signed.AddKey(k, c.Role); err != nil {
			return 0, err
		}
	}
	role = root.Signed.Roles[c.Role]
	if c.Threshold != 0 {
		role.Threshold = c.Threshold
	}
	if len(role.KeyIDs) == 0 {
		return 0, fmt.Errorf("role %s: that would leave no keys; add a key in the same step", c.Role)
	}
	if role.Threshold < 1 || role.Threshold > len(role.KeyIDs) {
		return 0, fmt.Errorf("role %s: threshold %d with %d keys; pass --threshold from 1 to %d", c.Role, role.Threshold, len(role.KeyIDs), len(role.KeyIDs))
	}
	if !c.Expires.IsZero() {
		root.Signed.Expires = c.Expires.UTC().Truncate(time.Second)
	}
	return root.Signed.Version, r.saveRoot(root)
}

// expandKeyID lets people type a unique prefix of a key id, as status prints them short.
func (r *Repo) expandKeyID(ids []string, prefix string) string {
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			match = append(match, id)
		}
	}
	if len(match) == 1 {
		return match[0]
	}
	return prefix
}

// RevokeKey removes a key from a role: for a top-level role through a new root version, for
// a delegated role through its delegator. Keys the role still needs to meet its threshold
// must remain: lower the threshold in the same step with ChangeRoot or Delegate otherwise.
func (r *Repo) RevokeKey(role, keyID string) error {
	if slices.Contains(topLevel, role) {
		_, err := r.ChangeRoot(RootChange{Role: role, Remove: []string{keyID}})
		return err
	}
	delegator, parent, i, err := r.findDelegation(role)
	if err != nil {
		return err
	}
	d := &parent.Signed.Delegations.Roles[i]
	id := r.expandKeyID(d.KeyIDs, keyID)
	if !slices.Contains(d.KeyIDs, id) {
		return fmt.Errorf("role %s: key %s is not one of its keys; `fieldflash-release status` lists them", role, keyID)
	}
	if len(d.KeyIDs)-1 < d.Threshold {
		return fmt.Errorf("role %s: removing key %s leaves %d keys for threshold %d; re-delegate with new keys (`fieldflash-release delegate --role %s ...`)", role, short(id), len(d.KeyIDs)-1, d.Threshold, role)
	}
	change(&parent.Signatures, &parent.Signed.Version)
	if err := parent.Signed.RevokeKey(id, role); err != nil {
		return err
	}
	return r.saveTargets(delegator, parent)
}

// BumpExpiry sets a role's expiry (root: through a new root version).
func (r *Repo) BumpExpiry(role string, expires time.Time) error {
	expires = expires.UTC().Truncate(time.Second)
	if !expires.After(r.now()) {
		return fmt.Errorf("role %s: expiry %s is in the past", role, expires.Format(time.RFC3339))
	}
	if role == metadata.ROOT {
		_, err := r.ChangeRoot(RootChange{Expires: expires})
		return err
	}
	m, err := r.load(role)
	if err != nil {
		return err
	}
	switch {
	case m.Targets != nil:
		change(&m.Targets.Signatures, &m.Targets.Signed.Version)
		m.Targets.Signed.Expires = expires
	case m.Snapshot != nil:
		change(&m.Snapshot.Signatures, &m.Snapshot.Signed.Version)
		m.Snapshot.Signed.Expires = expires
	case m.Timestamp != nil:
		change(&m.Timestamp.Signatures, &m.Timestamp.Signed.Version)
		m.Timestamp.Signed.Expires = expires
	}
	return r.save(m)
}
