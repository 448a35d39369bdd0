package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// Trust is established the way go-tuf's updater does it, with the bundle in the place of
// the remote repository and State in the place of the local metadata cache: the root chain
// is walked from the newest root trusted here, then the saved timestamp, snapshot and
// targets are loaded as trusted first and the bundle's on top of them, so every rollback
// rule of the TUF client workflow applies across runs. go-tuf's trustedmetadata enforces
// the rules; the checks before each step are only there to say precisely which rule a
// bundle broke.

type source int

const (
	fromBundle source = iota
	fromSaved
)

// loadedRole is one timestamp, snapshot or targets role in the trusted set.
type loadedRole struct {
	name      string
	delegator string
	raw       []byte
	from      source
}

// trust is one attempt to trust a bundle from one pinned root.
type trust struct {
	repo     string
	stateKey string // PinnedRoot.StateKey of the pin trust starts from
	md       *bundle.Metadata
	saved    *Saved
	now, ref time.Time
	limits   Limits

	tm      *trustedmetadata.TrustedMetadata
	roots   []*metadata.Metadata[metadata.RootType] // every root trusted on the way, oldest first
	rootRaw []byte                                  // raw bytes of tm.Root
	older   bool                                    // the bundle's timestamp is older than the one trusted before
	roles   map[string]*loadedRole
	order   []string // roles in the order they were loaded

	// The saved targets roles as parsed, for rollback checks and for telling a revoked
	// delegated key from a foreign one.
	savedTargets map[string]*metadata.Metadata[metadata.TargetsType]
	// stale lists saved delegated roles the trusted snapshot has moved past and the bundle
	// does not carry: left out of the trusted set, and dropped from State.
	stale    []string
	warnings []string
}

// candidate is a pinned root that may lead to the bundle.
type candidate struct {
	pinned       PinnedRoot
	root         *metadata.Metadata[metadata.RootType]
	saved        *Saved
	savedRoot    *metadata.Metadata[metadata.RootType]
	strict       bool // the bundle's chain passes through the pinned (or saved) root
	trustedUpTo  int64
	bundleNewest int64
}

// establishTrust picks the pinned root that leads to the bundle and builds the trusted
// metadata set from it.
func establishTrust(md *bundle.Metadata, opts Options, now, ref time.Time, limits Limits) (*trust, error) {
	var bundleNewest int64
	for v := range md.Roots {
		bundleNewest = max(bundleNewest, v)
	}
	var strict, loose []candidate
	var demoOnly, vendorOnly bool
	var pinnedNames []string
	for _, p := range opts.Roots {
		pr, e := decodeRoot(p.Root, "pinned root "+p.Name)
		if e != nil {
			// A broken pin cannot lead anywhere; the others may.
			pinnedNames = append(pinnedNames, fmt.Sprintf("%s, which cannot be used: %s", p.Name, e.Reason))
			continue
		}
		// A root that holds a demo key is a demo root whatever its name or key ids: the
		// demo keys are public, so anyone can sign for it.
		_, demoKeys := DemoKeys(pr, opts.Roots)
		if (p.Demo || demoKeys) && !opts.DemoMode {
			if chainsFrom(md, pr) {
				demoOnly = true
			}
			continue
		}
		// Demo mode trusts the demo root only: it keeps its own state, so a vendor's root
		// there would verify without the vendor's remembered metadata (a withdrawn
		// release would pass).
		if opts.DemoMode && !p.Demo {
			if chainsFrom(md, pr) {
				vendorOnly = true
			}
			continue
		}
		pinnedNames = append(pinnedNames, fmt.Sprintf("%s v%d", p.Name, pr.Signed.Version))
		c := candidate{pinned: p, root: pr, bundleNewest: bundleNewest, trustedUpTo: pr.Signed.Version}
		if opts.State != nil {
			s, err := opts.State.Load(p.StateKey())
			if err != nil {
				return nil, stateError("reading", p.Name, err)
			}
			c.saved = s
			if s != nil && s.Root != nil {
				sr, e := decodeRoot(s.Root, "saved root of "+p.Name)
				if e != nil {
					return nil, stateError("reading", p.Name, e)
				}
				// What is saved under a pin was learned by walking the root chain from that
				// pin, so it is never older than the pin, nor a different root of the same
				// version: anything else did not come from this pin.
				if sr.Signed.Version < pr.Signed.Version || (sr.Signed.Version == pr.Signed.Version && !sameSigned(sr.Signed, pr.Signed)) {
					return nil, stateError("reading", p.Name, fmt.Errorf("the saved root v%d does not chain from the pinned root v%d", sr.Signed.Version, pr.Signed.Version))
				}
				c.savedRoot = sr
				c.trustedUpTo = max(c.trustedUpTo, sr.Signed.Version)
			}
		}
		c.strict = chainsFrom(md, pr) || (c.savedRoot != nil && chainsFrom(md, c.savedRoot))
		switch {
		case c.strict:
			strict = append(strict, c)
		case bundleNewest < c.trustedUpTo:
			// The bundle's chain ends before the root trusted here: its metadata may still
			// be signed by keys that root trusts (a root renewed without rotating keys).
			loose = append(loose, c)
		}
	}
	if len(strict)+len(loose) == 0 {
		if demoOnly {
			return nil, errorf(CodeUntrusted, "root", "open it in demo mode (fieldflash demo), or get a bundle signed by your vendor",
				"the bundle is signed by the demo root, which is trusted only in demo mode")
		}
		if vendorOnly {
			return nil, errorf(CodeUntrusted, "root", "verify it without --demo, against the roots pinned on this machine",
				"demo mode trusts the demo root only, and this bundle is signed by a vendor's root")
		}
		pinned := "none"
		if len(pinnedNames) > 0 {
			pinned = strings.Join(pinnedNames, ", ")
		}
		return nil, errorf(CodeUntrusted, "root",
			"get the bundle from your vendor; if you trust this vendor, add its root to the trust store first",
			"the bundle's root chain (%s) does not lead from any root pinned on this machine (pinned: %s)", versionsOf(md.Roots), pinned)
	}
	// A pinned root that already has saved state for this bundle's chain speaks first, and
	// its refusal is final: the same root pinned again under another name has no saved state
	// and would otherwise accept what the first one refused as a rollback.
	sort.SliceStable(strict, func(i, j int) bool { return strict[i].saved != nil && strict[j].saved == nil })
	var first error
	for _, c := range append(strict, loose...) {
		t, err := runTrust(md, c, now, ref, limits)
		if err == nil {
			return t, nil
		}
		if c.strict && c.saved != nil {
			return nil, err
		}
		if !c.strict {
			switch CodeOf(err) {
			case CodeThreshold, CodeBadSignature, CodeRevokedKey:
				ve := err.(*Error)
				err = &Error{Code: CodeUntrusted, Thing: "root",
					Reason: fmt.Sprintf("the bundle's root chain ends at v%d, before the root v%d trusted for %s, and its metadata is not signed by that root's keys (%s: %s)",
						c.bundleNewest, c.trustedUpTo, c.pinned.Name, ve.Thing, ve.Reason),
					Next: "get the bundle from your vendor, or ask the release team for one that carries the current root chain", Err: err}
			}
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// chainsFrom reports whether the bundle's root chain passes through r: the bundle holds
// the same root version with the same canonical content, or the next version signed by r.
func chainsFrom(md *bundle.Metadata, r *metadata.Metadata[metadata.RootType]) bool {
	v := r.Signed.Version
	// The same version with the same signed content is the same root, whatever
	// signatures each copy carries (State keeps only the signatures that counted).
	if b, ok := md.Roots[v]; ok {
		if same, e := decodeRoot(b, ""); e == nil && sameSigned(same.Signed, r.Signed) {
			return true
		}
	}
	b, ok := md.Roots[v+1]
	if !ok {
		return false
	}
	next, e := decodeRoot(b, "")
	if e != nil {
		return false
	}
	return guard(func() error { return r.VerifyDelegate(metadata.ROOT, next) }) == nil
}

func versionsOf(roots map[int64][]byte) string {
	vs := slices.Sorted(maps.Keys(roots))
	if len(vs) == 0 {
		return "empty"
	}
	if len(vs) == 1 {
		return fmt.Sprintf("v%d", vs[0])
	}
	return fmt.Sprintf("v%d..v%d", vs[0], vs[len(vs)-1])
}

func stateError(doing, repo string, err error) *Error {
	return &Error{Code: CodeIO, Thing: "trust state of " + repo,
		Reason: fmt.Sprintf("%s it failed: %v", doing, err),
		Next:   "check $FIELDFLASH_HOME is readable and writable; if the state is damaged, restore it from a backup",
		Err:    err}
}

func runTrust(md *bundle.Metadata, c candidate, now, ref time.Time, limits Limits) (*trust, error) {
	t := &trust{
		repo: c.pinned.Name, stateKey: c.pinned.StateKey(), md: md, saved: c.saved, now: now, ref: ref, limits: limits,
		roles: map[string]*loadedRole{}, savedTargets: map[string]*metadata.Metadata[metadata.TargetsType]{},
	}
	if t.saved == nil {
		t.saved = &Saved{}
	}
	// What the state holds was verified when it was saved; it is still read with the same
	// care, since go-tuf would crash on a damaged file rather than refuse it.
	if t.saved.Timestamp != nil {
		if _, e := decodeTimestamp(t.saved.Timestamp, "timestamp.json"); e != nil {
			return nil, stateError("reading", t.repo, e)
		}
	}
	if t.saved.Snapshot != nil {
		if _, e := decodeSnapshot(t.saved.Snapshot, "snapshot.json"); e != nil {
			return nil, stateError("reading", t.repo, e)
		}
	}
	for name, raw := range t.saved.Targets {
		st, e := decodeTargets(raw, name+".json")
		if e != nil {
			return nil, stateError("reading", t.repo, e)
		}
		t.savedTargets[name] = st
	}
	start, startRaw := c.root, c.pinned.Root
	t.roots = []*metadata.Metadata[metadata.RootType]{c.root}
	if c.savedRoot != nil && c.savedRoot.Signed.Version > c.root.Signed.Version {
		start, startRaw = c.savedRoot, t.saved.Root
		t.roots = append(t.roots, c.savedRoot)
	}
	var tm *trustedmetadata.TrustedMetadata
	if err := guard(func() error {
		var err error
		tm, err = trustedmetadata.New(startRaw)
		return err
	}); err != nil {
		thing := fmt.Sprintf("root v%d trusted for %s", start.Signed.Version, t.repo)
		e := t.tufError(thing, err, nil)
		if r := checkSignatures(start.Signed, start.Signatures, mustRootAuthority(start), nil).refusal(thing); r != nil {
			e = r
		}
		e.Next = "the pinned root or the saved trust state is damaged; reinstall fieldflash or restore the trust state"
		return nil, e
	}
	tm.RefTime = ref
	t.tm, t.rootRaw = tm, startRaw

	steps := []func() error{t.walkRoots, t.loadTimestamp, t.loadSnapshot, t.loadTopTargets}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := t.loadDelegations(metadata.TARGETS); err != nil {
		return nil, err
	}
	if !t.older {
		for _, name := range slices.Sorted(maps.Keys(md.Delegated)) {
			if _, ok := t.tm.Targets[name]; !ok {
				return nil, errorf(CodeUnexpected, "metadata/"+name+".json", "the bundle was assembled wrongly; ask the release team for a new one",
					"no trusted role delegates to %s", name)
			}
		}
	}
	return t, nil
}

func mustRootAuthority(r *metadata.Metadata[metadata.RootType]) authority {
	a, _ := rootAuthority(r, metadata.ROOT)
	return a
}

// earlierRoots lists every trusted root before the current one, newest first: the
// authorities whose keys count as revoked when the current root no longer lists them.
func (t *trust) earlierRoots(role string) []authority {
	var out []authority
	cur := t.tm.Root.Signed.Version
	for i := len(t.roots) - 1; i >= 0; i-- {
		r := t.roots[i]
		if r.Signed.Version >= cur {
			continue
		}
		if a, ok := rootAuthority(r, role); ok {
			out = append(out, a)
		}
	}
	return out
}

// walkRoots follows the bundle's root chain from the newest root trusted here, one
// version at a time: each root must be signed by the threshold of the one before it and
// of its own.
func (t *trust) walkRoots() error {
	for v := t.tm.Root.Signed.Version + 1; ; v++ {
		raw, ok := t.md.Roots[v]
		if !ok {
			break
		}
		thing := fmt.Sprintf("%d.root.json", v)
		next, e := decodeRoot(raw, thing)
		if e != nil {
			return e
		}
		if next.Signed.Version != v {
			return errorf(CodeMetadata, thing, nextRebuild, "holds root version %d", next.Signed.Version)
		}
		prev, _ := rootAuthority(t.tm.Root, metadata.ROOT)
		if e := checkSignatures(next.Signed, next.Signatures, prev, t.earlierRoots(metadata.ROOT)).refusal(thing); e != nil {
			return e
		}
		own, _ := rootAuthority(next, metadata.ROOT)
		own.label = fmt.Sprintf("root v%d itself", v)
		if e := checkSignatures(next.Signed, next.Signatures, own, nil).refusal(thing); e != nil {
			return e
		}
		if err := guard(func() error { _, err := t.tm.UpdateRoot(raw); return err }); err != nil {
			return t.tufError(thing, err, nil)
		}
		t.roots = append(t.roots, next)
		t.rootRaw = raw
	}
	cur := t.tm.Root.Signed.Version
	for v := range t.md.Roots {
		if v > cur {
			return errorf(CodeRootSkipped, "root chain", "ask the release team for a bundle that carries every root version",
				"the bundle carries %d.root.json but not %d.root.json: each root must be signed by the one before it", v, cur+1)
		}
	}
	if t.tm.Root.Signed.IsExpired(t.ref) {
		return t.expiryError("root.json", t.tm.Root.Signed.Version, t.tm.Root.Signed.Expires, false)
	}
	return nil
}

func (t *trust) loadTimestamp() error {
	const thing = "timestamp.json"
	if t.saved.Timestamp != nil {
		// Like go-tuf's updater: a saved timestamp that no longer verifies (keys rotated)
		// is dropped; an expired one stays loaded to guard against rollback.
		_ = guard(func() error { _, err := t.tm.UpdateTimestamp(t.saved.Timestamp); return err })
	}
	prev := t.tm.Timestamp
	ts, e := decodeTimestamp(t.md.Timestamp, thing)
	if e != nil {
		return e
	}
	auth, _ := rootAuthority(t.tm.Root, metadata.TIMESTAMP)
	if e := checkSignatures(ts.Signed, ts.Signatures, auth, t.earlierRoots(metadata.TIMESTAMP)).refusal(thing); e != nil {
		return e
	}
	if prev != nil {
		pv := prev.Signed.Version
		switch v := ts.Signed.Version; {
		case v < pv:
			t.older = true
			t.addRole(metadata.TIMESTAMP, metadata.ROOT, t.saved.Timestamp, fromSaved)
			return nil
		case v == pv:
			if !sameSigned(ts.Signed, prev.Signed) {
				return errorf(CodeRollback, thing, "do not flash it; ask the release team how two different timestamps came to share a version",
					"version %d differs from the timestamp v%d this machine trusted before: a version number is never reused", v, pv)
			}
			t.addRole(metadata.TIMESTAMP, metadata.ROOT, t.saved.Timestamp, fromSaved)
			return nil
		}
		if sv, pvs := ts.Signed.Meta["snapshot.json"].Version, prev.Signed.Meta["snapshot.json"].Version; sv < pvs {
			return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
				"names snapshot v%d, older than the snapshot v%d this machine trusted before", sv, pvs)
		}
	}
	if err := guard(func() error { _, err := t.tm.UpdateTimestamp(t.md.Timestamp); return err }); err != nil {
		return t.tufError(thing, err, expiringOf(thing, ts.Signed.Version, ts.Signed.Expires, false))
	}
	t.addRole(metadata.TIMESTAMP, metadata.ROOT, t.md.Timestamp, fromBundle)
	return nil
}

func (t *trust) loadSnapshot() error {
	const thing = "snapshot.json"
	var savedErr error
	loaded := false
	if t.saved.Snapshot != nil {
		savedErr = guard(func() error { _, err := t.tm.UpdateSnapshot(t.saved.Snapshot, true); return err })
		loaded = savedErr == nil
	}
	if t.older {
		if !loaded {
			return t.savedFailure(thing, savedErr)
		}
		t.addRole(metadata.SNAPSHOT, metadata.ROOT, t.saved.Snapshot, fromSaved)
		return nil
	}
	snap, e := decodeSnapshot(t.md.Snapshot, thing)
	if e != nil {
		return e
	}
	if loaded {
		if e := t.sameAsTrusted(thing, snap.Signed.Version, t.tm.Snapshot.Signed.Version, snap.Signed, t.tm.Snapshot.Signed); e != nil {
			return e
		}
		t.addRole(metadata.SNAPSHOT, metadata.ROOT, t.saved.Snapshot, fromSaved)
		return nil
	}
	auth, _ := rootAuthority(t.tm.Root, metadata.SNAPSHOT)
	if e := checkSignatures(snap.Signed, snap.Signatures, auth, t.earlierRoots(metadata.SNAPSHOT)).refusal(thing); e != nil {
		return e
	}
	// The saved snapshot go-tuf loaded as intermediate (if any) is what rollback is
	// measured against.
	if prev := t.tm.Snapshot; prev != nil {
		if snap.Signed.Version < prev.Signed.Version {
			return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
				"version %d is older than the snapshot v%d this machine trusted before", snap.Signed.Version, prev.Signed.Version)
		}
		for _, name := range slices.Sorted(maps.Keys(prev.Signed.Meta)) {
			was := prev.Signed.Meta[name]
			now, ok := snap.Signed.Meta[name]
			if !ok {
				return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
					"no longer names %s, which the snapshot v%d trusted before named", name, prev.Signed.Version)
			}
			if now.Version < was.Version {
				return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
					"names %s v%d, older than the v%d this machine trusted before", name, now.Version, was.Version)
			}
		}
	}
	if err := guard(func() error { _, err := t.tm.UpdateSnapshot(t.md.Snapshot, false); return err }); err != nil {
		return t.tufError(thing, err, expiringOf(thing, snap.Signed.Version, snap.Signed.Expires, false))
	}
	t.addRole(metadata.SNAPSHOT, metadata.ROOT, t.md.Snapshot, fromBundle)
	return nil
}

func (t *trust) loadTopTargets() error {
	return t.loadRole(metadata.TARGETS, metadata.ROOT)
}

// loadRole loads the targets role name, delegated by parent ("root" for the top-level
// targets): the saved copy first, as go-tuf's updater does with its cache, then the
// bundle's.
func (t *trust) loadRole(name, parent string) error {
	thing := name + ".json"
	savedRaw := t.saved.Targets[name]
	bundleRaw := t.md.Delegated[name]
	if name == metadata.TARGETS {
		bundleRaw = t.md.Targets
	}
	var savedErr error
	loaded := false
	if savedRaw != nil {
		savedErr = guard(func() error { _, err := t.tm.UpdateDelegatedTargets(savedRaw, name, parent); return err })
		loaded = savedErr == nil
	}
	if loaded {
		if bundleRaw != nil && !t.older {
			bt, e := decodeTargets(bundleRaw, thing)
			if e != nil {
				return e
			}
			cur := t.tm.Targets[name]
			if e := t.sameAsTrusted(thing, bt.Signed.Version, cur.Signed.Version, bt.Signed, cur.Signed); e != nil {
				return e
			}
		}
		t.addRole(name, parent, savedRaw, fromSaved)
		return nil
	}
	if t.older && savedErr != nil {
		return t.savedFailure(thing, savedErr)
	}
	if bundleRaw == nil {
		if savedErr != nil && name != metadata.TARGETS {
			// Saved from an earlier bundle, moved past by the snapshot now trusted, and not
			// carried: no payload of this bundle needs it (the walk says so if one does).
			// It is left out of the trusted set, and out of what is saved.
			t.stale = append(t.stale, name)
			return errNotCarried
		}
		if savedErr != nil {
			return t.savedFailure(thing, savedErr)
		}
		return errorf(CodeMetadata, thing, "ask the release team for a bundle that carries all its metadata",
			"the bundle does not carry it, and nothing is saved for it")
	}
	bt, e := decodeTargets(bundleRaw, thing)
	if e != nil {
		return e
	}
	var auth authority
	var earlier []authority
	var ok bool
	if parent == metadata.ROOT {
		auth, ok = rootAuthority(t.tm.Root, name)
		earlier = t.earlierRoots(name)
	} else {
		auth, ok = delegationAuthority(t.tm.Targets[parent], parent, name)
		if sp := t.savedTargets[parent]; sp != nil && !sameSigned(sp.Signed, t.tm.Targets[parent].Signed) {
			if a, ok := delegationAuthority(sp, parent, name); ok {
				earlier = append(earlier, a)
			}
		}
	}
	if ok {
		if e := checkSignatures(bt.Signed, bt.Signatures, auth, earlier).refusal(thing); e != nil {
			return e
		}
	}
	if sr := t.savedTargets[name]; sr != nil && !t.older && bt.Signed.Version < sr.Signed.Version {
		return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
			"version %d is older than the %s v%d this machine trusted before", bt.Signed.Version, name, sr.Signed.Version)
	}
	if err := guard(func() error { _, err := t.tm.UpdateDelegatedTargets(bundleRaw, name, parent); return err }); err != nil {
		return t.tufError(thing, err, expiringOf(thing, bt.Signed.Version, bt.Signed.Expires, false))
	}
	t.addRole(name, parent, bundleRaw, fromBundle)
	return nil
}

// errNotCarried: a saved role is stale and the bundle does not carry it (see loadRole).
var errNotCarried = errors.New("stale saved role the bundle does not carry")

// loadDelegations loads, depth first, every role that role delegates to and that the
// bundle or the saved state carries. A delegated role that neither carries is refused
// only if a payload's path leads through it (see governing).
func (t *trust) loadDelegations(role string) error {
	d := t.tm.Targets[role].Signed.Delegations
	if d == nil {
		return nil
	}
	var children []string
	switch {
	case d.Roles != nil:
		for _, r := range d.Roles {
			children = append(children, r.Name)
		}
	case d.SuccinctRoles != nil:
		have := map[string]bool{}
		for name := range t.md.Delegated {
			have[name] = true
		}
		for name := range t.saved.Targets {
			have[name] = true
		}
		for _, name := range slices.Sorted(maps.Keys(have)) {
			if d.SuccinctRoles.IsDelegatedRole(name) {
				children = append(children, name)
			}
		}
	}
	for _, child := range children {
		if _, done := t.tm.Targets[child]; done || child == metadata.TARGETS || child == metadata.ROOT {
			continue
		}
		if t.md.Delegated[child] == nil && t.saved.Targets[child] == nil {
			continue
		}
		if len(t.tm.Targets) > t.limits.MaxRoles+1 {
			return errorf(CodeTooLarge, "delegations", "ask the release team for a bundle within the limits of docs/bundle-format.md",
				"more than %d delegated roles", t.limits.MaxRoles)
		}
		if err := t.loadRole(child, role); err != nil {
			if errors.Is(err, errNotCarried) {
				continue
			}
			if t.older && t.saved.Targets[child] == nil {
				// An older bundle's own copy of a role the newest metadata trusted here
				// never carried: it is judged by the newest snapshot, and if a payload
				// needs it, the walk says so.
				continue
			}
			return err
		}
		if err := t.loadDelegations(child); err != nil {
			return err
		}
	}
	return nil
}

// sameAsTrusted compares the bundle's copy of a role with the copy trusted before, when
// the trusted one is current: an older or a different one of the same version is a
// rollback, a newer one disagrees with the snapshot that names the trusted one.
func (t *trust) sameAsTrusted(thing string, v, trusted int64, bundleSigned, trustedSigned any) *Error {
	switch {
	case v < trusted:
		return errorf(CodeRollback, thing, "do not flash it; get the current bundle from the release team",
			"version %d is older than the v%d this machine trusted before", v, trusted)
	case v == trusted && !sameSigned(bundleSigned, trustedSigned):
		return errorf(CodeRollback, thing, "do not flash it; ask the release team how two different files came to share a version",
			"version %d differs from the v%d this machine trusted before: a version number is never reused", v, trusted)
	case v > trusted:
		return errorf(CodeMetadata, thing, nextRebuild,
			"the bundle carries v%d, but its timestamp and snapshot name v%d", v, trusted)
	}
	return nil
}

// savedFailure explains why the newest metadata trusted before cannot govern an older
// bundle (or a role the bundle does not carry).
func (t *trust) savedFailure(thing string, err error) error {
	if err == nil {
		return errorf(CodeMetadata, thing+" trusted before", "restore the trust state, or verify the newest bundle of this repository again",
			"is missing from this machine's trust state")
	}
	return t.tufError(thing+" trusted before", err, nil)
}

func (t *trust) addRole(name, delegator string, raw []byte, from source) {
	if _, ok := t.roles[name]; !ok {
		t.order = append(t.order, name)
	}
	t.roles[name] = &loadedRole{name: name, delegator: delegator, raw: raw, from: from}
}

// expiring names a file whose expiry go-tuf may have refused.
type expiring struct {
	thing   string
	version int64
	expires time.Time
	saved   bool
}

func expiringOf(thing string, version int64, expires time.Time, saved bool) *expiring {
	return &expiring{thing: thing, version: version, expires: expires, saved: saved}
}

// tufError turns an error of go-tuf's into a refusal of thing. subject is the file being
// loaded, for expiry.
func (t *trust) tufError(thing string, err error, subject *expiring) *Error {
	var (
		expired  *metadata.ErrExpiredMetadata
		unsigned *metadata.ErrUnsignedMetadata
		lenHash  *metadata.ErrLengthOrHashMismatch
		badVer   *metadata.ErrBadVersionNumber
		eqVer    *metadata.ErrEqualVersionNumber
	)
	switch {
	case errors.As(err, &expired):
		return t.expiredInSet(thing, subject)
	case errors.As(err, &unsigned):
		return &Error{Code: CodeThreshold, Thing: thing, Reason: "not signed by enough trusted keys (" + unsigned.Msg + ")",
			Next: "ask the release team for a bundle signed by the current keys", Err: err}
	case errors.As(err, &lenHash):
		return &Error{Code: CodeMetadata, Thing: thing, Reason: "does not match the length or hash its snapshot or timestamp signed for it (" + lenHash.Msg + ")",
			Next: "the bundle mixes metadata of different releases or was damaged; get a fresh copy from the release team", Err: err}
	case errors.As(err, &badVer), errors.As(err, &eqVer):
		return &Error{Code: CodeMetadata, Thing: thing, Reason: "version does not match what the snapshot or timestamp names (" + err.Error() + ")",
			Next: "the bundle mixes metadata of different releases; get a fresh copy from the release team", Err: err}
	}
	return &Error{Code: CodeMetadata, Thing: thing, Reason: err.Error(), Next: nextRebuild, Err: err}
}

// expiredInSet finds what go-tuf found expired: the final root, the timestamp, the
// snapshot (each of which later steps require), or the file being loaded.
func (t *trust) expiredInSet(thing string, subject *expiring) *Error {
	var cands []*expiring
	if t.tm == nil {
		t.tm = &trustedmetadata.TrustedMetadata{}
	}
	if r := t.tm.Root; r != nil {
		cands = append(cands, expiringOf("root.json", r.Signed.Version, r.Signed.Expires, false))
	}
	if ts := t.tm.Timestamp; ts != nil {
		cands = append(cands, expiringOf("timestamp.json", ts.Signed.Version, ts.Signed.Expires, t.isSaved(metadata.TIMESTAMP)))
	}
	if s := t.tm.Snapshot; s != nil {
		cands = append(cands, expiringOf("snapshot.json", s.Signed.Version, s.Signed.Expires, t.isSaved(metadata.SNAPSHOT)))
	}
	if subject != nil {
		cands = append(cands, subject)
	}
	for _, c := range cands {
		if t.ref.After(c.expires) {
			return t.expiryError(c.thing, c.version, c.expires, c.saved)
		}
	}
	return errorf(CodeExpired, thing, "ask the release team for a freshly signed bundle", "expired before %s", day(t.ref))
}

func (t *trust) isSaved(role string) bool {
	if r, ok := t.roles[role]; ok {
		return r.from == fromSaved
	}
	// Not recorded yet: go-tuf holds either the saved copy or the bundle's that it just
	// refused.
	switch role {
	case metadata.TIMESTAMP:
		if t.saved.Timestamp == nil || t.tm.Timestamp == nil {
			return false
		}
		s, e := decodeTimestamp(t.saved.Timestamp, "")
		return e == nil && sameSigned(s.Signed, t.tm.Timestamp.Signed)
	case metadata.SNAPSHOT:
		if t.saved.Snapshot == nil || t.tm.Snapshot == nil {
			return false
		}
		s, e := decodeSnapshot(t.saved.Snapshot, "")
		return e == nil && sameSigned(s.Signed, t.tm.Snapshot.Signed)
	}
	return false
}

// expiryError refuses an expired file; when it expired only against the newest time this
// machine trusted, not against the system clock, the clock is what is wrong.
func (t *trust) expiryError(thing string, version int64, expires time.Time, saved bool) *Error {
	if saved {
		thing += fmt.Sprintf(" v%d trusted before", version)
	}
	if !t.now.After(expires) {
		return errorf(CodeClockBackwards, thing,
			"set the system clock to the right time; if it is right, ask the release team for a bundle signed after "+day(t.ref)+
				"; if this machine's clock was once set ahead by mistake, support can reset the newest trusted time ($FIELDFLASH_HOME/state/newest-time)",
			"expires %s, which is before the newest time this machine trusted (%s) though after the system clock (%s): the clock went backwards",
			day(expires), day(t.ref), day(t.now))
	}
	next := "ask the release team for a freshly signed bundle"
	if strings.HasPrefix(thing, "timestamp.json") {
		next = "the bundle's timestamp is stale (frozen); ask the release team for a bundle with a fresh timestamp"
	}
	return errorf(CodeExpired, thing, next, "v%d expired on %s (now %s)", version, day(expires), day(t.ref))
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// rolesReport describes every role of the trusted set, for Verified.Roles.
func (t *trust) rolesReport() []Role {
	r := t.tm.Root
	own, _ := rootAuthority(r, metadata.ROOT)
	out := []Role{{
		Name: metadata.ROOT, Version: r.Signed.Version, Expires: r.Signed.Expires,
		Threshold: own.threshold, SignedBy: checkSignatures(r.Signed, r.Signatures, own, nil).counted, Delegator: metadata.ROOT,
	}}
	for _, name := range t.order {
		lr := t.roles[name]
		var signed any
		var sigs []metadata.Signature
		var version int64
		var expires time.Time
		switch name {
		case metadata.TIMESTAMP:
			m := t.tm.Timestamp
			signed, sigs, version, expires = m.Signed, m.Signatures, m.Signed.Version, m.Signed.Expires
		case metadata.SNAPSHOT:
			m := t.tm.Snapshot
			signed, sigs, version, expires = m.Signed, m.Signatures, m.Signed.Version, m.Signed.Expires
		default:
			m := t.tm.Targets[name]
			signed, sigs, version, expires = m.Signed, m.Signatures, m.Signed.Version, m.Signed.Expires
		}
		var auth authority
		if lr.delegator == metadata.ROOT {
			auth, _ = rootAuthority(r, name)
		} else {
			auth, _ = delegationAuthority(t.tm.Targets[lr.delegator], lr.delegator, name)
		}
		out = append(out, Role{
			Name: name, Version: version, Expires: expires, Threshold: auth.threshold,
			SignedBy: checkSignatures(signed, sigs, auth, nil).counted, Delegator: lr.delegator,
		})
	}
	return out
}

// save records the newest metadata in the state: whatever came from the bundle replaced
// what was saved, because go-tuf accepted it as newer (or the saved copy no longer held).
func (t *trust) save(st State) error {
	s := copySaved(t.saved)
	changed := false
	if t.tm.Root.Signed.Version > t.savedRootVersion() {
		r := t.tm.Root
		counted := t.counted(r.Signed, r.Signatures, metadata.ROOT, metadata.ROOT)
		if earlier := t.earlierRoots(metadata.ROOT); len(earlier) > 0 {
			counted = append(counted, checkSignatures(r.Signed, r.Signatures, earlier[0], nil).counted...)
		}
		raw, err := verifiedBytes(t.rootRaw, counted)
		if err != nil {
			return err
		}
		s.Root = raw
		changed = true
	}
	for _, name := range t.order {
		lr := t.roles[name]
		if lr.from != fromBundle {
			continue
		}
		changed = true
		raw := lr.raw
		var err error
		switch name {
		case metadata.TIMESTAMP:
			m := t.tm.Timestamp
			raw, err = verifiedBytes(raw, t.counted(m.Signed, m.Signatures, name, lr.delegator))
			s.Timestamp = raw
		case metadata.SNAPSHOT:
			m := t.tm.Snapshot
			if !pinnedBytes(t.tm.Timestamp.Signed.Meta["snapshot.json"]) {
				raw, err = verifiedBytes(raw, t.counted(m.Signed, m.Signatures, name, lr.delegator))
			}
			s.Snapshot = raw
		default:
			m := t.tm.Targets[name]
			if !pinnedBytes(t.tm.Snapshot.Signed.Meta[name+".json"]) {
				raw, err = verifiedBytes(raw, t.counted(m.Signed, m.Signatures, name, lr.delegator))
			}
			if s.Targets == nil {
				s.Targets = map[string][]byte{}
			}
			s.Targets[name] = raw
		}
		if err != nil {
			return err
		}
	}
	if r, ok := t.roles[metadata.SNAPSHOT]; ok && r.from == fromBundle {
		for _, name := range t.stale {
			delete(s.Targets, name)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return st.Save(t.stateKey, s)
}

// counted lists the key ids whose signatures on a role count under its delegator's keys.
func (t *trust) counted(signed any, sigs []metadata.Signature, role, delegator string) []string {
	var auth authority
	if delegator == metadata.ROOT {
		auth, _ = rootAuthority(t.tm.Root, role)
	} else {
		auth, _ = delegationAuthority(t.tm.Targets[delegator], delegator, role)
	}
	return checkSignatures(signed, sigs, auth, nil).counted
}

// pinnedBytes reports whether a snapshot's or timestamp's listing fixes the listed file's
// bytes (length or hashes): go-tuf checks a saved copy against it when loading it again,
// and a file whose bytes were signed for cannot have been padded.
func pinnedBytes(m *metadata.MetaFiles) bool {
	return m != nil && (m.Length != 0 || len(m.Hashes) > 0)
}

// verifiedBytes is what State keeps of a metadata file that came from the bundle: its
// signed part as it was, and only the signatures that counted. Junk signatures padded onto
// a file that still verifies (its threshold met by the real ones) are not saved, so they
// cost nothing to any later verification.
func verifiedBytes(raw []byte, counted []string) ([]byte, error) {
	var m struct {
		Signed     json.RawMessage      `json:"signed"`
		Signatures []metadata.Signature `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	keep := []metadata.Signature{}
	for _, s := range m.Signatures {
		if slices.Contains(counted, s.KeyID) && !slices.ContainsFunc(keep, func(k metadata.Signature) bool { return k.KeyID == s.KeyID }) {
			keep = append(keep, s)
		}
	}
	return json.Marshal(struct {
		Signatures []metadata.Signature `json:"signatures"`
		Signed     json.RawMessage      `json:"signed"`
	}{keep, m.Signed})
}

func (t *trust) savedRootVersion() int64 {
	if t.saved.Root == nil {
		return 0
	}
	r, e := decodeRoot(t.saved.Root, "")
	if e != nil {
		return 0
	}
	return r.Signed.Version
}

// sortedPaths returns the target paths of a role in a stable order.
func sortedPaths(m map[string]*metadata.TargetFiles) []string {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}
