package verify

import (
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// FuzzMetadataDecode feeds bytes through every path a bundle's metadata takes before it
// is trusted: decoding as each role, the shape checks, signature counting, the
// delegation walk and the custom target metadata. Nothing may panic.
func FuzzMetadataDecode(f *testing.F) {
	r := fxNewRepo(f)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, true, fxNewKey(f, "acme-gw-a"))
	m := fxMeta()
	m.Requires = []Requirement{{Component: "bootloader", Version: ">=1.2.0 <2.0.0"}}
	r.addTarget("targets", "acme-gw/app.bin", []byte("app"), m)
	r.addTarget("acme-gw", "acme-gw/radio.bin", []byte("radio"), fxMeta())
	c := r.contents()
	for _, seed := range [][]byte{c.Roots[1], c.Timestamp, c.Snapshot, c.Targets, c.Delegated["acme-gw"]} {
		f.Add(seed)
	}
	for _, seed := range []string{
		`{"signed":{"_type":"timestamp","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":null}},"signatures":[]}`,
		`{"signed":{"_type":"root","version":1,"expires":"2030-01-01T00:00:00Z","keys":{"a":null},"roles":{"root":null}},"signatures":[]}`,
		`{"signed":{"_type":"targets","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"a":null},"delegations":{"keys":{},"succinct_roles":{"keyids":[],"threshold":1,"bit_length":40,"name_prefix":"bin"}}},"signatures":[]}`,
		`{"signed":{"_type":"targets","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"a":{"length":1,"hashes":{"sha256":"00"},"custom":{"fieldflash":{"hardware_ids":["x"],"version":"1.0.0","component":"c","release_counter":1,"requires":[{"component":"b","version":">=1.0"}]}}}}},"signatures":[]}`,
		`{"signed":{"_type":"targets","version":1,"expires":"2030-01-01T00:00:00Z","targets":{},"delegations":{"keys":{},"roles":[{"name":"p","keyids":[],"threshold":1,"terminating":false,"path_hash_prefixes":["8f"],"x-fieldflash-hardware-ids":["hw",7]}]}},"signatures":[]}`,
		`{"signed":{"_type":"snapshot","version":1,"expires":"2030-01-01T00:00:00Z","meta":{"targets.json":{"version":1.5}}},"signatures":[{"keyid":"a","sig":"zz"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if root, e := decodeRoot(data, "root.json"); e == nil {
			for role := range root.Signed.Roles {
				if a, ok := rootAuthority(root, role); ok {
					_ = checkSignatures(root.Signed, root.Signatures, a, []authority{a}).refusal("root.json")
				}
			}
			_ = guard(func() error { _, err := trustedmetadata.New(data); return err })
		}
		if ts, e := decodeTimestamp(data, "timestamp.json"); e == nil {
			_ = ts.Signed.Meta["snapshot.json"].Version
		}
		if snap, e := decodeSnapshot(data, "snapshot.json"); e == nil {
			_ = snap.Signed.Meta["targets.json"].Version
		}
		targets, e := decodeTargets(data, "targets.json")
		if e != nil {
			return
		}
		tr := &trust{
			tm:     &trustedmetadata.TrustedMetadata{Targets: map[string]*metadata.Metadata[metadata.TargetsType]{"targets": targets}},
			limits: Limits{}.WithDefaults(),
			order:  []string{"targets"},
		}
		idx := tr.listingsByHash()
		for _, path := range append(sortedPaths(targets.Signed.Targets), "acme-gw/x.bin", "bin-00/x") {
			role, tf, _ := tr.governing(path)
			if tf != nil {
				if meta, e := parseTargetMeta(tf, "target "+path); e == nil {
					_, _ = checkDevice([]Target{{Path: path, Role: role, Meta: meta}}, Options{Hardware: "x", Installed: map[string]string{"b": "1.0.0"}})
				}
			}
		}
		for sha := range idx {
			rs, _ := tr.resolve(idx, sha)
			for _, r := range rs {
				if meta, e := parseTargetMeta(r.tf, "target "+r.path); e == nil {
					_ = confined("payload", r.listing, meta, r.chain)
				}
			}
		}
		if d := targets.Signed.Delegations; d != nil {
			for _, dr := range d.Roles {
				if a, ok := delegationAuthority(targets, "targets", dr.Name); ok {
					_ = checkSignatures(targets.Signed, targets.Signatures, a, nil).refusal("x.json")
				}
			}
		}
	})
}
