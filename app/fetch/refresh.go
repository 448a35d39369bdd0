package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

// trusted is a repository's metadata after a successful refresh from one mirror.
type trusted struct {
	mirror   string
	tm       *trustedmetadata.TrustedMetadata
	rootRaw  []byte            // the newest root, as published
	newRoots map[int64][]byte  // root versions downloaded in this refresh
	raw      map[string][]byte // timestamp, snapshot, targets and delegated roles, as published
	order    []string          // targets roles in the order they were loaded (depth first)
	date     time.Time         // the mirror's Date header on timestamp.json, zero if none
	saved    *verify.Saved     // what the state held before
	ref      time.Time         // the reference time for expiry
}

// guard runs a go-tuf call, turning a panic on hostile input into an error. Every file a
// mirror serves is first read with verify's hardened readers (verify.ParseRoot, ...), which
// bound signatures and keys before go-tuf's quadratic checks and refuse what verify would
// refuse in a bundle (key ids that are not their keys', null entries).
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed metadata (%v)", r)
		}
	}()
	return f()
}

// refresh brings the repository's metadata up to date from the first mirror that serves
// metadata which verifies, following the TUF client workflow, and saves it as the newest
// trusted state. A mirror that serves metadata which does not verify is left for the rest
// of this fetch; what it served changes nothing here.
func (s *session) refresh(ctx context.Context) (*trusted, error) {
	st := s.opts.State
	if l, ok := st.(verify.Locker); ok {
		unlock, err := l.Lock()
		if err != nil {
			return nil, &Error{Code: CodeIO, Thing: "trust state", Reason: "locking it failed: " + err.Error(), Next: "check that $FIELDFLASH_HOME is writable", Err: err}
		}
		defer unlock()
	}
	saved, err := st.Load(s.pinned.StateKey())
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "trust state of " + s.pinned.Name, Reason: err.Error(), Next: "check $FIELDFLASH_HOME; if the state is damaged, restore it from a backup", Err: err}
	}
	if saved == nil {
		saved = &verify.Saved{}
	}
	newest, err := st.NewestTime()
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "newest trusted time", Reason: err.Error(), Next: "check $FIELDFLASH_HOME", Err: err}
	}
	now := s.now().UTC()
	ref := now
	if newest.After(now) {
		ref = newest
		s.warn("the system clock (%s) is behind the newest time this machine trusted (%s); expiry is checked against the latter: set the clock", day(now), day(newest))
	}

	var failures []error
	for _, m := range s.usable() {
		s.emit(Event{Kind: EventMirror, Mirror: m, Message: "refreshing metadata"})
		t, err := s.refreshFrom(ctx, m, saved, ref)
		if err == nil {
			if err := s.keep(ctx, t, now, newest); err != nil {
				return nil, err
			}
			return t, nil
		}
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeCanceled, Thing: "fetch", Reason: "interrupted", Next: "run the same command again; nothing was changed", Err: ctx.Err()}
		}
		var fe *Error
		if errors.As(err, &fe) {
			return nil, fe // not the mirror's doing: a damaged pin or state
		}
		failures = append(failures, err)
		if kindOf(err) == failWrong {
			s.markWrong(m, err)
		} else {
			s.emit(Event{Kind: EventDropped, Mirror: m, Message: err.Error()})
		}
	}
	return nil, s.refreshFailure(failures, now)
}

// refreshFailure explains why no mirror gave a trusted state.
func (s *session) refreshFailure(failures []error, now time.Time) error {
	var wrong, down, auth []string
	expired := false
	for _, err := range failures {
		switch kindOf(err) {
		case failWrong:
			wrong = append(wrong, err.Error())
			expired = expired || errors.Is(err, &metadata.ErrExpiredMetadata{})
		case failAuth:
			auth = append(auth, err.Error())
		default:
			down = append(down, err.Error())
		}
	}
	repo := "repository " + s.pinned.Name
	switch {
	case len(wrong) == 0 && len(auth) > 0 && len(down) == 0:
		return &Error{Code: CodeConfig, Thing: repo, Reason: "TLS authentication failed with every mirror (" + strings.Join(auth, "; ") + ")",
			Next: "ask the vendor for the client certificate and CA this laptop needs"}
	case len(wrong) == 0:
		return &Error{Code: CodeOffline, Thing: repo, Reason: "no mirror could be reached (" + strings.Join(append(down, auth...), "; ") + ")",
			Next: "check the network connection (and proxy settings), then run fetch again; what is already in the cache still works offline"}
	}
	next := "nothing was changed on this machine; try again later, and tell the vendor which mirror serves this"
	if expired {
		next = fmt.Sprintf("if the system clock (%s) is right, the mirrors serve a stale (frozen) timestamp: tell the vendor; if the clock is wrong, set it and fetch again", day(now))
	}
	return &Error{Code: CodeRefused, Thing: repo, Reason: "every mirror that answered was refused (" + strings.Join(append(append(wrong, auth...), down...), "; ") + ")", Next: next}
}

func (s *session) refreshFrom(ctx context.Context, mirror string, saved *verify.Saved, ref time.Time) (*trusted, error) {
	start := s.pinned.Root
	var startVersion int64
	if err := guard(func() error {
		r, err := metadata.Root().FromBytes(start)
		if err == nil {
			startVersion = r.Signed.Version
		}
		return err
	}); err != nil {
		return nil, errorf(CodeConfig, "pinned root of "+s.pinned.Name, "pin the vendor's root again", "does not parse: %v", err)
	}
	if saved.Root != nil {
		// The newest root trusted before counts like the pinned one (docs/trust.md).
		if err := guard(func() error {
			r, err := metadata.Root().FromBytes(saved.Root)
			if err == nil && r.Signed.Version > startVersion {
				start, startVersion = saved.Root, r.Signed.Version
			}
			return err
		}); err != nil {
			return nil, errorf(CodeIO, "saved root of "+s.pinned.Name, "restore the trust state from a backup", "does not parse: %v", err)
		}
	}
	t := &trusted{mirror: mirror, rootRaw: start, newRoots: map[int64][]byte{}, raw: map[string][]byte{}, saved: saved, ref: ref}
	if err := guard(func() (err error) { t.tm, err = trustedmetadata.New(start); return err }); err != nil {
		return nil, errorf(CodeConfig, fmt.Sprintf("root v%d of %s", startVersion, s.pinned.Name), "pin the vendor's root again, or restore the trust state", "trusted here but no longer loads: %v", err)
	}
	t.tm.RefTime = ref
	p := s.policy

	// 5.3: the root chain, one version at a time, until the mirror has no newer one.
	for v := startVersion + 1; v <= startVersion+p.MaxRootRotations; v++ {
		name := fmt.Sprintf("%d.root.json", v)
		data, _, err := s.getMetadata(ctx, mirror, name, p.RootMaxLength)
		if kindOf(err) == failMissing {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, err := verify.ParseRoot(data, name); err != nil {
			return nil, refusal(mirror, name, err)
		}
		if err := guard(func() error { _, err := t.tm.UpdateRoot(data); return err }); err != nil {
			return nil, refusal(mirror, name, err)
		}
		t.newRoots[v], t.rootRaw = data, data
		s.emit(Event{Kind: EventMetadata, Mirror: mirror, Message: fmt.Sprintf("root v%d", v)})
	}
	consistent := t.tm.Root.Signed.ConsistentSnapshot

	// 5.4: timestamp. The saved one is loaded first so that an older one is refused.
	if saved.Timestamp != nil {
		_ = guard(func() error { _, err := t.tm.UpdateTimestamp(saved.Timestamp); return err })
	}
	data, hdr, err := s.getMetadata(ctx, mirror, "timestamp.json", p.TimestampMaxLength)
	if kindOf(err) == failMissing {
		return nil, &mirrorError{mirror, failWrong, fmt.Errorf("has no metadata/timestamp.json: is %s the repository's base URL?", mirror)}
	}
	if err != nil {
		return nil, err
	}
	if d, err := http.ParseTime(hdr.Get("Date")); err == nil {
		t.date = d
	}
	if _, err := verify.ParseTimestamp(data, "timestamp.json"); err != nil {
		return nil, refusal(mirror, "timestamp.json", err)
	}
	err = guard(func() error { _, err := t.tm.UpdateTimestamp(data); return err })
	switch {
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}):
		// The mirror serves the timestamp trusted before: nothing new, as go-tuf's updater.
		t.raw[metadata.TIMESTAMP] = saved.Timestamp
	case err != nil:
		return nil, refusal(mirror, "timestamp.json", s.explainTimestamp(t, data, err))
	default:
		t.raw[metadata.TIMESTAMP] = data
	}
	ts := t.tm.Timestamp
	if ts.Signed.IsExpired(ref) {
		// go-tuf refuses it at the snapshot step; said here, it can be said precisely.
		return nil, refusal(mirror, "timestamp.json", s.explainTimestamp(t, t.raw[metadata.TIMESTAMP], &metadata.ErrExpiredMetadata{Msg: "timestamp.json is expired"}))
	}
	s.emit(Event{Kind: EventMetadata, Mirror: mirror, Message: fmt.Sprintf("timestamp v%d, expires %s", ts.Signed.Version, day(ts.Signed.Expires))})

	// 5.5: snapshot.
	snapMeta := ts.Signed.Meta["snapshot.json"]
	if snapMeta == nil {
		return nil, refusal(mirror, "timestamp.json", errors.New("names no snapshot.json"))
	}
	loaded := false
	if saved.Snapshot != nil {
		loaded = guard(func() error { _, err := t.tm.UpdateSnapshot(saved.Snapshot, true); return err }) == nil
		if loaded {
			t.raw[metadata.SNAPSHOT] = saved.Snapshot
		}
	}
	if !loaded {
		name := versioned("snapshot", snapMeta.Version, consistent)
		data, _, err := s.getMetadata(ctx, mirror, name, metaLimit(snapMeta.Length, p.SnapshotMaxLength))
		if err != nil {
			return nil, missingIsWrong(err, mirror, name)
		}
		if _, err := verify.ParseSnapshot(data, name); err != nil {
			return nil, refusal(mirror, name, err)
		}
		if err := guard(func() error { _, err := t.tm.UpdateSnapshot(data, false); return err }); err != nil {
			return nil, refusal(mirror, name, err)
		}
		t.raw[metadata.SNAPSHOT] = data
	}
	s.emit(Event{Kind: EventMetadata, Mirror: mirror, Message: fmt.Sprintf("snapshot v%d", t.tm.Snapshot.Signed.Version)})

	// 5.6 and 5.7: targets, then every delegated role, depth first in delegation order.
	if err := s.loadRole(ctx, t, metadata.TARGETS, metadata.ROOT, consistent); err != nil {
		return nil, err
	}
	if err := s.loadDelegations(ctx, t, metadata.TARGETS, consistent); err != nil {
		return nil, err
	}
	return t, nil
}

// explainTimestamp adds to go-tuf's refusal of a timestamp what the user can act on.
func (s *session) explainTimestamp(t *trusted, data []byte, err error) error {
	if errors.Is(err, &metadata.ErrBadVersionNumber{}) && t.saved.Timestamp != nil {
		return fmt.Errorf("%w: it is older than the timestamp this machine trusted before, so the mirror replays old metadata (rollback) or lags behind", err)
	}
	if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		var exp time.Time
		_ = guard(func() error {
			m, err := metadata.Timestamp().FromBytes(data)
			if err == nil {
				exp = m.Signed.Expires
			}
			return err
		})
		msg := fmt.Sprintf("%v: it expired on %s (reference time %s): the mirror serves a stale (frozen) timestamp, or this machine's clock is ahead", err, day(exp), day(t.ref))
		if !t.date.IsZero() && !exp.IsZero() && t.date.Before(exp) {
			msg += fmt.Sprintf("; the server's clock says %s, before that expiry, so this machine's clock is probably wrong", day(t.date))
		}
		return &wrapped{msg, err}
	}
	return err
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

func versioned(role string, v int64, consistent bool) string {
	if consistent {
		return fmt.Sprintf("%d.%s.json", v, role)
	}
	return role + ".json"
}

// metaLimit is the download limit of a metadata file: the signed length when the
// snapshot or timestamp gives one, else the default limit.
func metaLimit(signed, def int64) int64 {
	if signed > 0 {
		return min(signed, bundle.Limits{}.WithDefaults().MaxMetadataBytes)
	}
	return def
}

func missingIsWrong(err error, mirror, name string) error {
	if kindOf(err) == failMissing {
		return &mirrorError{mirror, failWrong, fmt.Errorf("lacks metadata/%s, which the signed metadata names", name)}
	}
	return err
}

// refusal is go-tuf's refusal of a file a mirror served.
func refusal(mirror, thing string, err error) error {
	reason := err.Error()
	switch {
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		reason = "not signed by enough trusted keys (" + reason + ")"
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		reason = "does not match the length or hash signed for it (" + reason + ")"
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		reason = "version refused (" + reason + ")"
	}
	return &mirrorError{mirror, failWrong, &wrapped{thing + ": " + reason, err}}
}

// loadRole trusts one targets role: the saved copy when the snapshot still names it, else
// the mirror's.
func (s *session) loadRole(ctx context.Context, t *trusted, role, parent string, consistent bool) error {
	if why := bundle.CheckRoleName(role); role != metadata.TARGETS && why != "" {
		return refusal(t.mirror, "delegation to "+role, fmt.Errorf("role name cannot be carried in a bundle: %s", why))
	}
	if saved := t.saved.Targets[role]; saved != nil {
		if guard(func() error { _, err := t.tm.UpdateDelegatedTargets(saved, role, parent); return err }) == nil {
			t.raw[role] = saved
			t.order = append(t.order, role)
			return nil
		}
	}
	meta := t.tm.Snapshot.Signed.Meta[role+".json"]
	if meta == nil {
		return refusal(t.mirror, "snapshot.json", fmt.Errorf("does not name %s.json, which %s delegates to: the repository is inconsistent; tell the vendor", role, parent))
	}
	name := versioned(role, meta.Version, consistent)
	data, _, err := s.getMetadata(ctx, t.mirror, name, metaLimit(meta.Length, s.policy.TargetsMaxLength))
	if err != nil {
		return missingIsWrong(err, t.mirror, name)
	}
	if _, err := verify.ParseTargets(data, name); err != nil {
		return refusal(t.mirror, name, err)
	}
	if err := guard(func() error { _, err := t.tm.UpdateDelegatedTargets(data, role, parent); return err }); err != nil {
		return refusal(t.mirror, name, err)
	}
	t.raw[role] = data
	t.order = append(t.order, role)
	s.emit(Event{Kind: EventMetadata, Mirror: t.mirror, Message: fmt.Sprintf("%s v%d", role, t.tm.Targets[role].Signed.Version)})
	return nil
}

// loadDelegations loads every role that role delegates to, depth first: all of them, not
// only those one path needs, because fetch lists every release.
func (s *session) loadDelegations(ctx context.Context, t *trusted, role string, consistent bool) error {
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
		// Hashed bins: the snapshot names those that exist.
		for _, name := range slices.Sorted(maps.Keys(t.tm.Snapshot.Signed.Meta)) {
			if bin, ok := strings.CutSuffix(name, ".json"); ok && d.SuccinctRoles.IsDelegatedRole(bin) {
				children = append(children, bin)
			}
		}
	}
	for _, child := range children {
		if _, done := t.tm.Targets[child]; done || child == metadata.ROOT || child == metadata.TARGETS {
			continue
		}
		if len(t.order) > s.policy.MaxRoles {
			return refusal(t.mirror, "delegations", fmt.Errorf("more than %d delegated roles", s.policy.MaxRoles))
		}
		if err := s.loadRole(ctx, t, child, role, consistent); err != nil {
			return err
		}
		if err := s.loadDelegations(ctx, t, child, consistent); err != nil {
			return err
		}
	}
	return nil
}

// getMetadata downloads metadata/<name> from mirror, at most limit bytes, retrying what
// may pass (a dropped connection, a 503) with backoff.
func (s *session) getMetadata(ctx context.Context, mirror, name string, limit int64) ([]byte, http.Header, error) {
	type result struct {
		data []byte
		hdr  http.Header
	}
	minRate := 0.0
	if len(s.usable()) > 1 {
		minRate = s.policy.MinRate
	}
	op := func() (result, error) {
		resp, err := s.open(ctx, mirror, fileURL(mirror, "metadata", name), 0, minRate)
		if err != nil {
			if kindOf(err) != failDown || ctx.Err() != nil {
				return result{}, backoff.Permanent(err)
			}
			return result{}, err
		}
		defer resp.Close()
		if resp.ContentLength > limit {
			return result{}, backoff.Permanent(&mirrorError{mirror, failWrong, fmt.Errorf("metadata/%s: declares %d bytes, more than the limit of %d", name, resp.ContentLength, limit)})
		}
		data, err := io.ReadAll(io.LimitReader(resp.body, limit+1))
		if err != nil {
			if kindOf(err) == failSlow {
				return result{}, backoff.Permanent(err)
			}
			return result{}, err
		}
		if int64(len(data)) > limit {
			return result{}, backoff.Permanent(&mirrorError{mirror, failWrong, fmt.Errorf("metadata/%s: more than the limit of %d bytes", name, limit)})
		}
		return result{data, resp.Header}, nil
	}
	r, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(s.backoffFor()),
		backoff.WithMaxTries(uint(s.policy.Tries)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			s.emit(Event{Kind: EventRetry, Mirror: mirror, Message: fmt.Sprintf("%v; trying again in %s", err, d.Round(time.Millisecond))})
		}))
	if err != nil && ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return r.data, r.hdr, err
}

// keep saves a refreshed state: the newest metadata into State (which offline
// verification reads), every root version into the cache's root chain, and the newest
// trusted time.
func (s *session) keep(ctx context.Context, t *trusted, now, newest time.Time) error {
	st := s.opts.State
	next := &verify.Saved{
		Root:      t.rootRaw,
		Timestamp: t.raw[metadata.TIMESTAMP],
		Snapshot:  t.raw[metadata.SNAPSHOT],
		Targets:   map[string][]byte{},
	}
	for _, role := range t.order {
		next.Targets[role] = t.raw[role]
	}
	ioErr := func(what string, err error) error {
		return &Error{Code: CodeIO, Thing: what, Reason: err.Error(), Next: "check that $FIELDFLASH_HOME is writable and the disk is not full", Err: err}
	}
	if !sameSaved(t.saved, next) {
		if err := st.Save(s.pinned.StateKey(), next); err != nil {
			return ioErr("trust state of "+s.pinned.Name, err)
		}
	}
	for v, raw := range t.newRoots {
		if err := s.cache.SaveRoot(s.pinned.StateKey(), v, raw); err != nil {
			return ioErr("root chain cache", err)
		}
	}
	if err := s.completeChain(ctx, t); err != nil {
		return err
	}
	// The newest trusted time moves up to the clock once a fresh timestamp verified, unless
	// the server's Date says the clock runs ahead: an unsigned Date never moves the anchor,
	// it only keeps a wrong clock from moving it.
	const tolerance = 10 * time.Minute
	switch {
	case !t.date.IsZero() && now.Sub(t.date) > tolerance:
		s.warn("the system clock (%s) is ahead of the repository server's (%s) by %s: set the clock; the newest trusted time stays at %s", day(now), day(t.date), now.Sub(t.date).Round(time.Minute), day(newest))
		return nil
	case !t.date.IsZero() && t.date.Sub(now) > tolerance:
		s.warn("the system clock (%s) is behind the repository server's (%s) by %s: set the clock", day(now), day(t.date), t.date.Sub(now).Round(time.Minute))
	}
	if now.After(newest) {
		if err := st.SaveNewestTime(now); err != nil {
			return ioErr("newest trusted time", err)
		}
	}
	return nil
}

func sameSaved(a, b *verify.Saved) bool {
	if a == nil || !bytes.Equal(a.Root, b.Root) || !bytes.Equal(a.Timestamp, b.Timestamp) || !bytes.Equal(a.Snapshot, b.Snapshot) || len(a.Targets) != len(b.Targets) {
		return false
	}
	for role, raw := range b.Targets {
		if !bytes.Equal(a.Targets[role], raw) {
			return false
		}
	}
	return true
}

// completeChain makes sure the cache holds every root version from the pinned one to the
// newest, so that a bundle made from the cache walks from the root other laptops pin. A
// version this machine learnt from a bundle (not online) is downloaded now; the chain is
// checked from the pinned root with go-tuf, one version at a time.
func (s *session) completeChain(ctx context.Context, t *trusted) error {
	ioErr := func(err error) error {
		return &Error{Code: CodeIO, Thing: "root chain cache", Reason: err.Error(), Next: "check that $FIELDFLASH_HOME is readable and writable", Err: err}
	}
	chain, err := s.cache.Roots(s.pinned.StateKey())
	if err != nil {
		return ioErr(err)
	}
	tm, err := trustedmetadata.New(s.pinned.Root)
	if err != nil {
		return errorf(CodeConfig, "pinned root of "+s.pinned.Name, "pin the vendor's root again", "does not load: %v", err)
	}
	newest := t.tm.Root.Signed.Version
	for v := tm.Root.Signed.Version + 1; v <= newest; v++ {
		raw, have := chain[v]
		switch {
		case v == newest:
			raw, have = t.rootRaw, bytes.Equal(chain[v], t.rootRaw)
		case !have:
			data, _, err := s.getMetadata(ctx, t.mirror, fmt.Sprintf("%d.root.json", v), s.policy.RootMaxLength)
			if err != nil {
				s.warn("root v%d is not in the cache and %s does not serve it (%v): bundles made here carry the root chain from v%d only, which laptops that trust an older root cannot follow", v, t.mirror, err, newest)
				return s.saveNewestRoot(t, chain, ioErr)
			}
			raw = data
		}
		if err := guard(func() error { _, err := tm.UpdateRoot(raw); return err }); err != nil {
			s.warn("root v%d does not chain from the pinned root (%v): bundles made here carry the root chain from v%d only", v, err, newest)
			return s.saveNewestRoot(t, chain, ioErr)
		}
		if !have {
			if err := s.cache.SaveRoot(s.pinned.StateKey(), v, raw); err != nil {
				return ioErr(err)
			}
		}
	}
	return nil
}

func (s *session) saveNewestRoot(t *trusted, chain map[int64][]byte, ioErr func(error) error) error {
	v := t.tm.Root.Signed.Version
	if bytes.Equal(chain[v], t.rootRaw) {
		return nil
	}
	if err := s.cache.SaveRoot(s.pinned.StateKey(), v, t.rootRaw); err != nil {
		return ioErr(err)
	}
	return nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
