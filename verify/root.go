package verify

import (
	"maps"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// CheckRoot reads a root.json the way it must be read before anyone pins it: well formed
// (no null keys or roles, which would crash go-tuf), every key id computed from its key,
// and signed by its own root threshold of distinct keys. A root that cannot vouch for
// itself is never pinned. Every refusal is an *Error.
func CheckRoot(raw []byte) (*metadata.Metadata[metadata.RootType], error) {
	const thing = "root.json"
	md, e := decodeRoot(raw, thing)
	if e != nil {
		return nil, e
	}
	own, _ := rootAuthority(md, metadata.ROOT)
	own.label = "the root itself"
	if e := checkSignatures(md.Signed, md.Signatures, own, nil).refusal(thing); e != nil {
		e.Reason = "not a valid self-signed root: " + e.Reason
		e.Next = "ask the vendor for their root.json and compare its key fingerprints with the ones they publish"
		return nil, e
	}
	// go-tuf's own reading of it, as verification will do; a panic is a refusal.
	if err := guard(func() error { _, err := trustedmetadata.New(raw); return err }); err != nil {
		return nil, &Error{Code: CodeMetadata, Thing: thing, Reason: "not a valid self-signed root: " + err.Error(),
			Next: "ask the vendor for their root.json and compare its key fingerprints with the ones they publish", Err: err}
	}
	return md, nil
}

// DemoKeys reports whether root holds any key (of any role) that a demo root in roots
// holds, compared by key material: the demo keys are public, so anything signed by them
// proves nothing outside demo mode, under whatever id a root lists them.
func DemoKeys(root *metadata.Metadata[metadata.RootType], roots []PinnedRoot) (string, bool) {
	demo := map[string]bool{}
	for _, p := range roots {
		if !p.Demo {
			continue
		}
		if d, e := decodeRoot(p.Root, ""); e == nil {
			for _, k := range d.Signed.Keys {
				if fp, ok := fingerprint(k); ok {
					demo[fp] = true
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(root.Signed.Keys)) {
		if fp, ok := fingerprint(root.Signed.Keys[id]); ok && demo[fp] {
			return id, true
		}
	}
	return "", false
}
