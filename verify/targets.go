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
	"slices"

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

// governing walks the delegations for path as go-tuf's updater does and returns the
// role that lists it first, or "" when none does.
func (t *trust) governing(path string) (string, *metadata.TargetFiles, *Error) {
	type visit struct{ role, parent string }
	stack := []visit{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= t.limits.MaxRoles+1 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[v.role] {
			continue
		}
		m := t.tm.Targets[v.role]
		if m == nil {
			return "", nil, errorf(CodeMetadata, "target "+path, "ask the release team for a bundle that carries every delegated role on the way to its payloads",
				"%s delegates it to role %s, whose metadata the bundle does not carry", v.parent, v.role)
		}
		if tf, ok := m.Signed.Targets[path]; ok {
			return v.role, tf, nil
		}
		visited[v.role] = true
		if m.Signed.Delegations == nil {
			continue
		}
		var children []visit
		for _, r := range m.Signed.Delegations.GetRolesForTarget(path) {
			children = append(children, visit{r.Name, v.role})
			if r.Terminating {
				stack = nil
				break
			}
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return "", nil, nil
}

// resolve finds the trusted target a payload named sha stands for.
func (t *trust) resolve(idx map[string][]listing, sha string) (listing, *metadata.TargetFiles, *Error) {
	var walkErr *Error
	for _, l := range idx[sha] {
		role, tf, e := t.governing(l.path)
		if e != nil {
			if walkErr == nil {
				walkErr = e
			}
			continue
		}
		if tf == nil || role != l.role || hex.EncodeToString(tf.Hashes["sha256"]) != sha {
			continue
		}
		return l, tf, nil
	}
	return listing{}, nil, walkErr
}

// checkPayload matches one payload to its signed target, streams it through every hash
// the target lists, and has the image checked against its metadata.
func (t *trust) checkPayload(idx map[string][]listing, p *bundle.Payload, buf []byte, file io.ReaderAt) (Target, error) {
	thing := "payload targets/" + shortKey(p.SHA256)
	l, tf, e := t.resolve(idx, p.SHA256)
	if e != nil {
		return Target{}, e
	}
	if tf == nil {
		if t.older {
			return Target{}, errorf(CodeWithdrawn, thing, "do not flash it; get the current release from the vendor",
				"the bundle is older than the newest release metadata this machine trusted (%s), which no longer lists this payload: the release was withdrawn", t.newestTargets())
		}
		return Target{}, errorf(CodePayload, thing, "get the bundle of the release you mean to flash; payloads cannot be moved between bundles",
			"no signed target lists this hash: it belongs to another release")
	}
	thing = "payload " + l.path
	if p.Size != tf.Length {
		if t.older {
			return Target{}, errorf(CodeWithdrawn, thing, "do not flash it; get the current release from the vendor",
				"the newest release metadata this machine trusted lists it with %d bytes, the bundle carries %d", tf.Length, p.Size)
		}
		return Target{}, errorf(CodePayload, thing, "do not flash it; copy the bundle again from the vendor",
			"%d bytes, but the signed metadata says %d", p.Size, tf.Length)
	}
	meta, e := parseTargetMeta(tf, "target "+l.path)
	if e != nil {
		return Target{}, e
	}
	if err := streamPayload(p, tf, buf, thing); err != nil {
		return Target{}, err
	}
	target := Target{
		Path: l.path, Length: tf.Length, SHA256: p.SHA256, Role: l.role, Meta: meta, Offset: p.Offset,
	}
	info, err := CheckImage(io.NewSectionReader(file, p.Offset, p.Size), p.Size, meta)
	if err != nil {
		var ve *Error
		if errors.As(err, &ve) {
			if ve.Thing == "" {
				ve.Thing = thing
			}
			return Target{}, ve
		}
		return Target{}, &Error{Code: CodeIO, Thing: thing, Reason: "reading the image: " + err.Error(), Next: "check that the file is readable and copy it again", Err: err}
	}
	target.Image = info
	return target, nil
}

func (t *trust) newestTargets() string {
	if m := t.tm.Targets[metadata.TARGETS]; m != nil {
		return fmt.Sprintf("targets v%d", m.Signed.Version)
	}
	return "targets"
}

// streamPayload reads the payload once, through every hash its target lists, with one
// large buffer: memory stays flat whatever the payload's size.
func streamPayload(p *bundle.Payload, tf *metadata.TargetFiles, buf []byte, thing string) error {
	type check struct {
		alg  string
		h    hash.Hash
		want []byte
	}
	checks := []check{{"sha256", sha256.New(), tf.Hashes["sha256"]}}
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
