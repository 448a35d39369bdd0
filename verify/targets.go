package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// A bundle names each payload by its SHA-256, but TUF signs targets by path, and a path
// is governed by the first role that lists it on go-tuf's pre-order depth-first walk of
// the delegations (terminating delegations cut the walk short). So a payload is accepted
// only if some role lists a path with its hash AND that role is the one the walk reaches
// first for that path: a delegated role cannot sign paths it was not delegated.

// listing is one target entry of one trusted role.
type listing struct {
	role string
	path string
}

// listingsByHash indexes every trusted role's targets by their SHA-256, in the order
// the roles were loaded.
func (t *trust) listingsByHash() map[string][]listing {
	idx := map[string][]listing{}
	for _, name := range t.order {
		m := t.tm.Targets[name]
		if m == nil {
			continue
		}
		for _, path := range sortedPaths(m.Signed.Targets) {
			h, ok := m.Signed.Targets[path].Hashes["sha256"]
			if !ok {
				continue
			}
			key := hex.EncodeToString(h)
			idx[key] = append(idx[key], listing{role: name, path: path})
		}
	}
	return idx
}

// pathWalk is what the delegation walk for one path found.
type pathWalk struct {
	role    string                // the first role on the walk that lists the path; "" when none does
	tf      *metadata.TargetFiles // that role's entry for the path
	visited []string              // the roles the walk visited, in order
	cut     *delegationLink       // the first terminating delegation, which ended the walk there
	chain   []delegationLink      // the delegations from targets down to role
}

// delegationLink is one delegation: delegator trusts role for the paths dr lists or,
// for a succinct (hash bin) delegation, for the paths of role's bin.
type delegationLink struct {
	delegator string
	role      string
	dr        *metadata.DelegatedRole
	bins      *metadata.SuccinctRoles
}

// terminating reports whether the walk stops at this delegation (hash bins always do, TAP 15).
func (l delegationLink) terminating() bool { return l.dr == nil || l.dr.Terminating }

// hardware returns the hardware ids the delegator confines the delegate to, and whether it
// does (HardwareField in the delegation; checked to be a list of strings when read).
func (l delegationLink) hardware() ([]string, bool) {
	var fields map[string]any
	if l.dr != nil {
		fields = l.dr.UnrecognizedFields
	} else if l.bins != nil {
		fields = l.bins.UnrecognizedFields
	}
	raw, ok := fields[HardwareField]
	if !ok {
		return nil, false
	}
	ids, _ := hardwareList(raw)
	return ids, true
}

// HardwareField is the field of a delegated role (in "delegations.roles", or in
// "succinct_roles") by which a delegating role confines its delegate to hardware ids:
// every target the delegate signs, directly or through its own delegations, must list only
// hardware ids from this list. It is signed by the delegator, like the delegation's paths.
const HardwareField = "x-fieldflash-hardware-ids"

// hardwareList reads HardwareField's value: a JSON array of non-empty strings.
func hardwareList(raw any) ([]string, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be an array of hardware ids", HardwareField)
	}
	ids := make([]string, 0, len(list))
	for _, v := range list {
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("%s must hold only non-empty strings", HardwareField)
		}
		ids = append(ids, s)
	}
	return ids, nil
}

// delegatedPath is the TUF specification's rule for whether a delegated role is trusted
// for target: one of its "paths" patterns matches (shell-style, segment by segment, so
// "*" never crosses a "/"), or the hex SHA-256 of the target path starts with one of its
// "path_hash_prefixes". go-tuf v2.4.2 compares the prefixes with the base64 form of the
// hash (fixed upstream in go-tuf PR 783, in no release served here), so the rule lives here.
func delegatedPath(dr *metadata.DelegatedRole, target string) bool {
	switch {
	case len(dr.Paths) > 0:
		for _, pattern := range dr.Paths {
			if matchPathPattern(pattern, target) {
				return true
			}
		}
	case len(dr.PathHashPrefixes) > 0:
		sum := sha256.Sum256([]byte(target))
		h := hex.EncodeToString(sum[:])
		for _, prefix := range dr.PathHashPrefixes {
			if strings.HasPrefix(h, prefix) {
				return true
			}
		}
	}
	return false
}

// matchPathPattern matches target against a TUF path pattern the way python-tuf and
// go-tuf do: the same number of "/"-separated segments, each matching its pattern segment
// with shell-style wildcards.
func matchPathPattern(pattern, target string) bool {
	ps, ts := strings.Split(pattern, "/"), strings.Split(target, "/")
	if len(ps) != len(ts) {
		return false
	}
	for i := range ps {
		if ok, err := path.Match(ps[i], ts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// PathDelegated reports whether dr is trusted for target by the TUF specification's rule
// (paths patterns, or the hex SHA-256 of the path against path_hash_prefixes).
func PathDelegated(dr *metadata.DelegatedRole, target string) bool { return delegatedPath(dr, target) }

// DelegatedHardware returns the hardware ids dr confines its delegate to (HardwareField),
// and whether it does; an error when the field is not a list of non-empty strings.
func DelegatedHardware(dr *metadata.DelegatedRole) ([]string, bool, error) {
	raw, ok := dr.UnrecognizedFields[HardwareField]
	if !ok {
		return nil, false, nil
	}
	ids, err := hardwareList(raw)
	return ids, true, err
}

// delegationsFor lists, in order, the delegations of role (its metadata m) that are
// trusted for target.
func delegationsFor(role string, m *metadata.Metadata[metadata.TargetsType], target string) []delegationLink {
	d := m.Signed.Delegations
	if d == nil {
		return nil
	}
	if d.SuccinctRoles != nil {
		rs := d.SuccinctRoles.GetRolesForTarget(target)
		return []delegationLink{{delegator: role, role: rs[0].Name, bins: d.SuccinctRoles}}
	}
	var out []delegationLink
	for i := range d.Roles {
		if delegatedPath(&d.Roles[i], target) {
			out = append(out, delegationLink{delegator: role, role: d.Roles[i].Name, dr: &d.Roles[i]})
		}
	}
	return out
}

// patterns says which paths the delegation covers, for messages.
func (l delegationLink) patterns() string {
	switch {
	case l.dr == nil:
		return "the paths of its hash bin"
	case len(l.dr.Paths) > 0:
		return strings.Join(l.dr.Paths, ", ")
	case len(l.dr.PathHashPrefixes) > 0:
		return "the paths with hash prefixes " + strings.Join(l.dr.PathHashPrefixes, ", ")
	}
	return "no paths"
}

func (l delegationLink) covers(path string) bool {
	if l.bins != nil {
		rs := l.bins.GetRolesForTarget(path)
		return len(rs) == 1 && rs[0].Name == l.role
	}
	return delegatedPath(l.dr, path)
}

// governing walks the delegations for path as go-tuf's updater does and returns the
// role that lists it first, or "" when none does.
func (t *trust) governing(path string) (string, *metadata.TargetFiles, *Error) {
	w, e := t.walk(path, false)
	return w.role, w.tf, e
}

// walk is go-tuf's pre-order depth-first walk of the delegations for path. With explore,
// which only explains refusals, it ignores listings, terminating delegations and roles
// whose metadata is missing, and so visits every role some chain of delegations
// authorises for path.
func (t *trust) walk(path string, explore bool) (pathWalk, *Error) {
	type visit struct {
		role, parent string
		chain        []delegationLink
	}
	var w pathWalk
	stack := []visit{{role: metadata.TARGETS, parent: metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= t.limits.MaxRoles+1 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[v.role] {
			continue
		}
		m := t.tm.Targets[v.role]
		if m == nil {
			if explore {
				continue
			}
			return w, errorf(CodeMetadata, "target "+path, "ask the release team for a bundle that carries every delegated role on the way to its payloads",
				"%s delegates it to role %s, whose metadata the bundle does not carry", v.parent, v.role)
		}
		w.visited = append(w.visited, v.role)
		if tf, ok := m.Signed.Targets[path]; ok && !explore {
			w.role, w.tf, w.chain = v.role, tf, v.chain
			return w, nil
		}
		visited[v.role] = true
		var children []visit
		for _, l := range delegationsFor(v.role, m, path) {
			children = append(children, visit{role: l.role, parent: v.role, chain: append(slices.Clone(v.chain), l)})
			if l.terminating() && !explore {
				if w.cut == nil {
					w.cut = &l
				}
				stack = nil
				break
			}
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return w, nil
}

func delegatedRole(d *metadata.Delegations, name string) *metadata.DelegatedRole {
	i := slices.IndexFunc(d.Roles, func(r metadata.DelegatedRole) bool { return r.Name == name })
	if i < 0 {
		return nil
	}
	return &d.Roles[i]
}

// delegationsTo lists every trusted delegation of role, in the order the roles were loaded.
func (t *trust) delegationsTo(role string) []delegationLink {
	var out []delegationLink
	for _, name := range t.order {
		m := t.tm.Targets[name]
		if m == nil || m.Signed.Delegations == nil {
			continue
		}
		d := m.Signed.Delegations
		if dr := delegatedRole(d, role); dr != nil {
			out = append(out, delegationLink{delegator: name, role: role, dr: dr})
		} else if d.SuccinctRoles != nil && d.SuccinctRoles.IsDelegatedRole(role) {
			out = append(out, delegationLink{delegator: name, role: role, bins: d.SuccinctRoles})
		}
	}
	return out
}

// narrowLink finds the delegation on the way to role that does not cover path: role's own
// when it does not, else the first one above it.
func (t *trust) narrowLink(role, path string, seen map[string]bool) (delegationLink, bool) {
	if seen[role] || role == metadata.TARGETS {
		return delegationLink{}, false
	}
	seen[role] = true
	links := t.delegationsTo(role)
	for _, l := range links {
		if !l.covers(path) {
			return l, true
		}
	}
	for _, l := range links {
		if nl, ok := t.narrowLink(l.delegator, path, seen); ok {
			return nl, true
		}
	}
	return delegationLink{}, false
}

// resolved is one signed target that names a payload: its listing, its entry, and the
// delegations that lead to the role that signed it.
type resolved struct {
	listing
	tf    *metadata.TargetFiles
	chain []delegationLink
}

// resolve finds every trusted target a payload named sha stands for: one image can be
// signed under several paths (the same bytes for two hardware revisions), and each path
// the delegation walk gives to the role that lists it counts.
func (t *trust) resolve(idx map[string][]listing, sha string) ([]resolved, *Error) {
	var walkErr *Error
	var out []resolved
	seen := map[string]bool{}
	for _, l := range idx[sha] {
		if seen[l.path] {
			continue
		}
		w, e := t.walk(l.path, false)
		if e != nil {
			if walkErr == nil {
				walkErr = e
			}
			continue
		}
		if w.tf == nil || w.role != l.role || hex.EncodeToString(w.tf.Hashes["sha256"]) != sha {
			continue
		}
		seen[l.path] = true
		out = append(out, resolved{listing: l, tf: w.tf, chain: w.chain})
	}
	if len(out) == 0 {
		return nil, walkErr
	}
	return out, nil
}

// confined refuses a target that lists hardware a delegation on the way to its role does
// not allow: the path rules say which targets a delegate may sign, this says for which
// hardware, so a product key cannot sign firmware for another product's boards.
func confined(thing string, l listing, meta TargetMeta, chain []delegationLink) *Error {
	for _, link := range chain {
		allowed, ok := link.hardware()
		if !ok {
			continue
		}
		for _, hw := range meta.HardwareIDs {
			if slices.Contains(allowed, hw) {
				continue
			}
			via := ""
			if link.role != l.role {
				via = fmt.Sprintf(" (on the way to %s)", l.role)
			}
			only := "no hardware"
			if len(allowed) > 0 {
				only = "only hardware " + strings.Join(allowed, ", ")
			}
			return errorf(CodePayload, thing,
				fmt.Sprintf("do not flash it; a target for %s must be signed by a role delegated for that hardware; ask the release team for a corrected bundle", hw),
				"role %s signs it for hardware %s, but %s delegates to %s%s %s: a delegated key cannot sign firmware for other hardware",
				l.role, hw, link.delegator, link.role, via, only)
		}
	}
	return nil
}

// notGoverning refuses a payload that a trusted role lists, but under a path that role
// does not govern: the walk never reaches it for that path, or reaches another role first.
func (t *trust) notGoverning(thing string, l listing) *Error {
	next := fmt.Sprintf("the release team must sign it with a role delegated for %s; ask them for a corrected bundle", l.path)
	lists := fmt.Sprintf("role %s lists it as %s", l.role, l.path)
	w, _ := t.walk(l.path, false)
	if w.tf != nil && w.role != l.role {
		return errorf(CodePayload, thing,
			fmt.Sprintf("the release team must sign it with role %s, the first delegated for %s, or remove that role's entry; ask them for a corrected bundle", w.role, l.path),
			"%s, but the delegation walk for that path reaches role %s before %s, and %s lists it with other hashes (sha256 %s, %d bytes); only the first role on the walk counts",
			lists, w.role, l.role, w.role, shortKey(hex.EncodeToString(w.tf.Hashes["sha256"])), w.tf.Length)
	}
	if all, _ := t.walk(l.path, true); w.cut != nil && slices.Contains(all.visited, l.role) {
		return errorf(CodePayload, thing, next,
			"%s, but %s delegates %s to role %s as terminating, which ends the delegation walk for that path before it reaches %s",
			lists, w.cut.delegator, w.cut.patterns(), w.cut.role, l.role)
	}
	if nl, ok := t.narrowLink(l.role, l.path, map[string]bool{}); ok {
		via := ""
		if nl.role != l.role {
			via = fmt.Sprintf(" (on the way to %s)", l.role)
		}
		return errorf(CodePayload, thing, next,
			"%s, but %s delegates only %s to %s%s: a role counts only for the paths it was delegated",
			lists, nl.delegator, nl.patterns(), nl.role, via)
	}
	return errorf(CodePayload, thing, next,
		"%s, but the delegation walk for that path does not reach %s", lists, l.role)
}

// ownListing is how the bundle's own targets metadata name a payload.
type ownListing struct {
	label string // "targets v2"
	role  string
	path  string
	meta  TargetMeta // zero when the entry carries no readable custom metadata
}

// ownListing finds the payload sha in the bundle's own targets metadata. Only an older
// bundle's refusal uses it: that metadata was superseded, not trusted, and serves only to
// tell the technician which release the bundle holds.
func (t *trust) ownListing(sha string) (ownListing, bool) {
	roles := []string{metadata.TARGETS}
	roles = append(roles, slices.Sorted(maps.Keys(t.md.Delegated))...)
	for _, name := range roles {
		raw := t.md.Delegated[name]
		if name == metadata.TARGETS {
			raw = t.md.Targets
		}
		m, e := decodeTargets(raw, name+".json")
		if e != nil {
			continue
		}
		for _, path := range sortedPaths(m.Signed.Targets) {
			tf := m.Signed.Targets[path]
			if hex.EncodeToString(tf.Hashes["sha256"]) != sha {
				continue
			}
			own := ownListing{label: fmt.Sprintf("%s v%d", name, m.Signed.Version), role: name, path: path}
			if meta, e := parseTargetMeta(tf, ""); e == nil {
				own.meta = meta
			}
			return own, true
		}
	}
	return ownListing{}, false
}

// withdrawn refuses a payload of an older bundle that the newest metadata trusted here
// no longer vouch for, naming it as the bundle's own metadata do and saying what the
// newest metadata say about that path.
func (t *trust) withdrawn(sha string) *Error {
	const next = "do not flash it; ask the vendor for the current release's bundle"
	own, ok := t.ownListing(sha)
	if !ok {
		return errorf(CodeWithdrawn, "payload targets/"+shortKey(sha), next,
			"the bundle is older than what this machine trusted, and neither its own metadata nor the newest metadata trusted here (%s) list this payload",
			t.roleLabel(metadata.TARGETS))
	}
	names := "list it"
	switch {
	case own.meta.Version != "" && own.meta.Component != "":
		names = fmt.Sprintf("name it %s %s", own.meta.Component, own.meta.Version)
	case own.meta.Version != "":
		names = "name it version " + own.meta.Version
	}
	role, tf, e := t.governing(own.path)
	if e == nil && tf != nil {
		return errorf(CodeWithdrawn, "payload "+own.path, next,
			"the bundle is older than what this machine trusted: its own metadata (%s) %s, but the newest metadata trusted here (%s) list %s with different hashes (sha256 %s, %d bytes): the release was replaced",
			own.label, names, t.roleLabel(role), own.path, shortKey(hex.EncodeToString(tf.Hashes["sha256"])), tf.Length)
	}
	return errorf(CodeWithdrawn, "payload "+own.path, next,
		"the bundle is older than what this machine trusted: its own metadata (%s) %s, but the newest metadata trusted here (%s) no longer list %s: the release was withdrawn",
		own.label, names, t.roleLabel(t.roleFor(own.role, own.path)), own.path)
}

// roleFor names the role of the newest trusted metadata that speaks for path: the role
// that listed it in the bundle's own metadata if this machine trusts that role still, else
// the last role the delegation walk for path reaches.
func (t *trust) roleFor(own, path string) string {
	if _, ok := t.tm.Targets[own]; ok {
		return own
	}
	if w, _ := t.walk(path, true); len(w.visited) > 0 {
		return w.visited[len(w.visited)-1]
	}
	return metadata.TARGETS
}

// checkPayload matches one payload to its signed target, streams it through every hash
// the target lists, and has the image checked against its metadata.
func (t *trust) checkPayload(idx map[string][]listing, p *bundle.Payload, buf []byte, file io.ReaderAt) ([]Target, error) {
	thing := "payload targets/" + shortKey(p.SHA256)
	rs, e := t.resolve(idx, p.SHA256)
	if e != nil {
		return nil, e
	}
	if len(rs) == 0 {
		switch {
		case t.older:
			return nil, t.withdrawn(p.SHA256)
		case len(idx[p.SHA256]) > 0:
			return nil, t.notGoverning(thing, idx[p.SHA256][0])
		}
		if len(t.stale) > 0 {
			return nil, errorf(CodePayload, thing, "ask the release team for a bundle that carries every delegated role on the way to its payloads",
				"no signed target this bundle carries lists this hash, and it does not carry role %s, which this machine knows only from an older release", strings.Join(t.stale, ", "))
		}
		return nil, errorf(CodePayload, thing, "get the bundle of the release you mean to flash; payloads cannot be moved between bundles",
			"no signed target lists this hash: it belongs to another release")
	}
	var targets []Target
	var tfs []*metadata.TargetFiles
	for _, r := range rs {
		thing := "payload " + r.path
		if p.Size != r.tf.Length {
			if t.older {
				return nil, errorf(CodeWithdrawn, thing, "do not flash it; ask the vendor for the current release's bundle",
					"the bundle is older than what this machine trusted, and the newest metadata trusted here (%s) list it with %d bytes, while the bundle carries %d: the release was replaced",
					t.roleLabel(r.role), r.tf.Length, p.Size)
			}
			return nil, errorf(CodePayload, thing, "do not flash it; copy the bundle again from the vendor",
				"%d bytes, but the signed metadata says %d", p.Size, r.tf.Length)
		}
		meta, e := parseTargetMeta(r.tf, "target "+r.path)
		if e != nil {
			return nil, e
		}
		if e := confined(thing, r.listing, meta, r.chain); e != nil {
			return nil, e
		}
		targets = append(targets, Target{Path: r.path, Length: r.tf.Length, SHA256: p.SHA256, Role: r.role, Meta: meta, Offset: p.Offset})
		tfs = append(tfs, r.tf)
	}
	if err := streamPayload(p, tfs, buf, "payload "+rs[0].path); err != nil {
		return nil, err
	}
	// Each signed target says what the image is; the image must agree with every one.
	for i := range targets {
		thing := "payload " + targets[i].Path
		info, err := CheckImage(io.NewSectionReader(file, p.Offset, p.Size), p.Size, targets[i].Meta)
		if err != nil {
			var ve *Error
			if errors.As(err, &ve) {
				if ve.Thing == "" {
					ve.Thing = thing
				}
				return nil, ve
			}
			return nil, &Error{Code: CodeIO, Thing: thing, Reason: "reading the image: " + err.Error(), Next: "check that the file is readable and copy it again", Err: err}
		}
		targets[i].Image = info
	}
	return targets, nil
}

// roleLabel names a trusted targets role with its version: "targets v3".
func (t *trust) roleLabel(role string) string {
	if m := t.tm.Targets[role]; m != nil {
		return fmt.Sprintf("%s v%d", role, m.Signed.Version)
	}
	return role
}

// streamPayload reads the payload once, through every hash each of its targets lists,
// with one large buffer: memory stays flat whatever the payload's size.
func streamPayload(p *bundle.Payload, tfs []*metadata.TargetFiles, buf []byte, thing string) error {
	type check struct {
		alg  string
		h    hash.Hash
		want []byte
	}
	checks := []check{{"sha256", sha256.New(), tfs[0].Hashes["sha256"]}}
	for _, tf := range tfs {
		for _, alg := range slices.Sorted(maps.Keys(tf.Hashes)) {
			var h hash.Hash
			switch alg {
			case "sha256":
				continue
			case "sha512":
				h = sha512.New()
			case "sha384":
				h = sha512.New384()
			default:
				return errorf(CodeMetadata, thing, "ask the release team to sign targets with sha256 or sha512 hashes",
					"its target lists a %q hash, which fieldflash cannot check", alg)
			}
			checks = append(checks, check{alg, h, tf.Hashes[alg]})
		}
	}
	var n int64
	for {
		k, err := p.R.Read(buf)
		if k > 0 {
			n += int64(k)
			for _, c := range checks {
				c.h.Write(buf[:k])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return bundleError(err)
		}
	}
	if n != p.Size {
		return errorf(CodeTruncated, thing, "the file is incomplete: copy or download the bundle again",
			"ended after %d of %d bytes", n, p.Size)
	}
	for _, c := range checks {
		if got := c.h.Sum(nil); !slices.Equal(got, []byte(c.want)) {
			return errorf(CodePayload, thing, "do not flash it; copy the bundle again from the vendor",
				"its content does not match the signed %s hash: the payload was altered or damaged", c.alg)
		}
	}
	return nil
}
