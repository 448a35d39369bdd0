package fetch

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/fieldflash/fieldflash/app/cache"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

// BundleOptions says which bundle to assemble from the cache.
type BundleOptions struct {
	Home       string
	Repository string // "" picks the only repository with fetched metadata
	Roots      []verify.PinnedRoot
	State      verify.State
	// Hardware is the device's hardware id: the bundle carries the newest release of each
	// component that fits it.
	Hardware string
	// Paths, when set, names the targets to carry instead (each must fit Hardware).
	Paths []string
	// Out is the bundle file to write; default <repository>-<hardware>.fwb.
	Out string
	Now func() time.Time
}

// BundleResult is the bundle written.
type BundleResult struct {
	File     string           `json:"file"`
	Size     int64            `json:"size"`
	Targets  []Release        `json:"targets"`
	Verified *verify.Verified `json:"verified"`
}

// Bundle assembles a standard .fwb from the metadata this machine trusts and the targets
// in the cache, offline: the root chain from the pinned root, timestamp, snapshot, targets,
// every delegated role, and the payloads. Before it is put in place the bundle is verified
// with verify as a laptop with only the pinned roots would (fresh state), so it is known to
// verify anywhere those roots are pinned.
func Bundle(opts BundleOptions) (*BundleResult, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.Hardware == "" {
		return nil, errorf(CodeConfig, "bundle", "give the device's hardware id with --hardware", "no hardware id")
	}
	pinned, err := pickRepository(opts)
	if err != nil {
		return nil, err
	}
	saved, err := opts.State.Load(pinned.StateKey())
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "trust state of " + pinned.Name, Reason: err.Error(), Next: "check $FIELDFLASH_HOME", Err: err}
	}
	if saved == nil || saved.Timestamp == nil || saved.Targets[metadata.TARGETS] == nil {
		return nil, errorf(CodeNotFound, "repository "+pinned.Name, "run `fieldflash fetch --repository "+pinned.Name+" --hardware "+opts.Hardware+"` while online", "nothing fetched yet")
	}
	newest, err := opts.State.NewestTime()
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "newest trusted time", Reason: err.Error(), Err: err}
	}
	ref := now().UTC()
	if newest.After(ref) {
		ref = newest
	}
	tm, order, err := trustSaved(saved, ref)
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(opts.Home)
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "cache", Reason: err.Error(), Err: err}
	}

	all, _ := releases(tm, order, 256)
	var picked []Release
	if len(opts.Paths) > 0 {
		for _, p := range opts.Paths {
			i := slices.IndexFunc(all, func(r Release) bool { return r.Path == p })
			if i < 0 {
				return nil, errorf(CodeNotFound, "target "+p, "`fieldflash fetch` lists the releases", "the repository does not list it")
			}
			if !slices.Contains(all[i].Meta.HardwareIDs, opts.Hardware) {
				return nil, errorf(CodeNotFound, "target "+p, "pick a target for "+opts.Hardware, "does not fit hardware %s (it fits %s)", opts.Hardware, strings.Join(all[i].Meta.HardwareIDs, ", "))
			}
			picked = append(picked, all[i])
		}
	} else {
		var missing []string
		picked, missing = pick(all, []string{opts.Hardware})
		if len(missing) > 0 {
			return nil, errorf(CodeNotFound, "hardware "+opts.Hardware, "check the hardware id; the repository has releases for: "+strings.Join(hardwareIDs(all), ", "),
				"no release of repository %s fits it", pinned.Name)
		}
	}
	contents := &bundle.Contents{
		Timestamp: saved.Timestamp,
		Snapshot:  saved.Snapshot,
		Targets:   saved.Targets[metadata.TARGETS],
		Delegated: map[string][]byte{},
	}
	for _, role := range order {
		if role != metadata.TARGETS {
			contents.Delegated[role] = saved.Targets[role]
		}
	}
	if contents.Roots, err = rootChain(c, pinned, tm.Root.Signed.Version, saved.Root); err != nil {
		return nil, err
	}
	for _, r := range picked {
		if !c.Has(r.SHA256, r.Length) {
			return nil, errorf(CodeNotFound, "target "+r.Path, "run `fieldflash fetch --repository "+pinned.Name+" --hardware "+opts.Hardware+"` while online",
				"not in the cache (%d bytes, sha256 %s)", r.Length, r.SHA256[:12])
		}
		file := c.Path(r.SHA256)
		contents.Payloads = append(contents.Payloads, bundle.PayloadSource{SHA256: r.SHA256, Size: r.Length,
			Open: func() (io.ReadCloser, error) { return os.Open(file) }})
	}

	out := opts.Out
	if out == "" {
		out = pinned.Name + "-" + opts.Hardware + ".fwb"
	}
	out, _ = filepath.Abs(out)
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: out, Reason: err.Error(), Next: "pick a writable folder with --out", Err: err}
	}
	defer os.Remove(tmp.Name())
	werr := bundle.Write(tmp, contents)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// bundle.Write checks each payload's hash while copying: a cache file damaged on disk
		// since it was verified shows here.
		return nil, &Error{Code: CodeIO, Thing: out, Reason: "writing the bundle failed: " + werr.Error(), Next: "if a cached target is damaged, delete it from " + filepath.Join(c.Dir(), "targets") + " and fetch again", Err: werr}
	}
	var roots []verify.PinnedRoot
	for _, r := range opts.Roots {
		if !r.Demo {
			roots = append(roots, r)
		}
	}
	v, err := verify.VerifyFile(tmp.Name(), verify.Options{Roots: roots, State: verify.NewMemoryState(), Now: now, Hardware: opts.Hardware})
	if err != nil {
		return nil, fmt.Errorf("the assembled bundle does not verify, so it was not written: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, &Error{Code: CodeIO, Thing: out, Reason: err.Error(), Err: err}
	}
	fi, _ := os.Stat(out)
	v.Bundle = out
	return &BundleResult{File: out, Size: fi.Size(), Targets: picked, Verified: v}, nil
}

// pickRepository finds the pinned root to bundle from.
func pickRepository(opts BundleOptions) (verify.PinnedRoot, error) {
	var candidates []verify.PinnedRoot
	for _, r := range opts.Roots {
		if r.Demo || (opts.Repository != "" && r.Name != opts.Repository) {
			continue
		}
		if opts.Repository == "" {
			if s, err := opts.State.Load(r.StateKey()); err != nil || s == nil || s.Timestamp == nil {
				continue
			}
		}
		candidates = append(candidates, r)
	}
	switch {
	case len(candidates) == 1:
		return candidates[0], nil
	case opts.Repository != "":
		return verify.PinnedRoot{}, errorf(CodeConfig, "repository "+opts.Repository, "`fieldflash trust list` shows the pinned roots", "no such pinned root")
	case len(candidates) == 0:
		return verify.PinnedRoot{}, errorf(CodeNotFound, "bundle", "run `fieldflash fetch --hardware ID` while online first", "nothing has been fetched")
	}
	var names []string
	for _, c := range candidates {
		names = append(names, c.Name)
	}
	return verify.PinnedRoot{}, errorf(CodeConfig, "bundle", "pick one with --repository", "several repositories have fetched metadata (%s)", strings.Join(names, ", "))
}

// trustSaved loads the saved newest metadata with go-tuf, as a fetch left it, and checks
// that it has not expired since.
func trustSaved(saved *verify.Saved, ref time.Time) (*trustedmetadata.TrustedMetadata, []string, error) {
	var tm *trustedmetadata.TrustedMetadata
	var order []string
	err := guard(func() error {
		var err error
		if tm, err = trustedmetadata.New(saved.Root); err != nil {
			return err
		}
		tm.RefTime = ref
		if _, err = tm.UpdateTimestamp(saved.Timestamp); err != nil {
			return err
		}
		if _, err = tm.UpdateSnapshot(saved.Snapshot, true); err != nil {
			return err
		}
		var load func(role, parent string) error
		load = func(role, parent string) error {
			raw := saved.Targets[role]
			if raw == nil {
				return nil
			}
			if _, err := tm.UpdateDelegatedTargets(raw, role, parent); err != nil {
				return fmt.Errorf("%s: %w", role, err)
			}
			order = append(order, role)
			d := tm.Targets[role].Signed.Delegations
			if d == nil {
				return nil
			}
			var children []string
			if d.Roles != nil {
				for _, r := range d.Roles {
					children = append(children, r.Name)
				}
			} else if d.SuccinctRoles != nil {
				for _, name := range slices.Sorted(maps.Keys(saved.Targets)) {
					if d.SuccinctRoles.IsDelegatedRole(name) {
						children = append(children, name)
					}
				}
			}
			for _, c := range children {
				if _, done := tm.Targets[c]; done {
					continue
				}
				if err := load(c, role); err != nil {
					return err
				}
			}
			return nil
		}
		return load(metadata.TARGETS, metadata.ROOT)
	})
	if err != nil {
		if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
			return nil, nil, errorf(CodeRefused, "fetched metadata", "fetch again while online, then make the bundle", "has expired (%v): a bundle made from it would not verify", err)
		}
		return nil, nil, errorf(CodeIO, "fetched metadata", "fetch again while online", "does not load: %v", err)
	}
	return tm, order, nil
}

// rootChain is the longest run of root versions ending at the newest that the cache (and
// the pin) holds, from the pinned version on.
func rootChain(c *cache.Cache, pinned verify.PinnedRoot, newest int64, newestRaw []byte) (map[int64][]byte, error) {
	stored, err := c.Roots(pinned.StateKey())
	if err != nil {
		return nil, &Error{Code: CodeIO, Thing: "root chain cache", Reason: err.Error(), Err: err}
	}
	var pinnedVersion int64
	if r, err := metadata.Root().FromBytes(pinned.Root); err == nil {
		pinnedVersion = r.Signed.Version
		stored[pinnedVersion] = pinned.Root
	}
	stored[newest] = newestRaw
	chain := map[int64][]byte{}
	for v := newest; v >= max(pinnedVersion, 1); v-- {
		raw, ok := stored[v]
		if !ok {
			break
		}
		chain[v] = raw
	}
	return chain, nil
}
