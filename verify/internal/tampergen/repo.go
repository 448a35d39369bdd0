package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

// Fixed dates: the tests verify at 2027-01-01.
var (
	goodExpiry = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	pastExpiry = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	soonExpiry = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
)

// key is a test-only ed25519 key whose private half anyone can derive from its name.
type key struct {
	name   string
	signer signature.Signer
	tuf    *metadata.Key
	id     string
}

var keyCache = map[string]*key{}

func newKey(name string) *key {
	if k, ok := keyCache[name]; ok {
		return k
	}
	seed := sha256.Sum256([]byte("fieldflash-test-" + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	signer, err := signature.LoadED25519Signer(priv)
	must(err)
	tk, err := metadata.KeyFromPublicKey(priv.Public())
	must(err)
	id, err := tk.ID()
	must(err)
	k := &key{name: name, signer: signer, tuf: tk, id: id}
	keyCache[name] = k
	return k
}

// alias is the same public key under a second key id: the key object carries one extra
// field, so its canonical form, and so its id, differ while the key does not.
func (k *key) alias() (string, *metadata.Key) {
	a := &metadata.Key{Type: k.tuf.Type, Scheme: k.tuf.Scheme, Value: k.tuf.Value,
		UnrecognizedFields: map[string]any{"x-fieldflash-comment": "same key, second id"}}
	id, err := a.ID()
	must(err)
	return id, a
}

// roleKeys is who may sign a role and how many of them must.
type roleKeys struct {
	keys      []*key
	threshold int
}

func one(k *key) roleKeys { return roleKeys{keys: []*key{k}, threshold: 1} }

// rootSpec is one version of root.json.
type rootSpec struct {
	version                          int64
	root, timestamp, snapshot, targs roleKeys
	signers                          []*key // must meet this and the previous version's root threshold
	// aliasTargets lists the targets key a second time under another key id.
	aliasTargets bool
}

func (s rootSpec) bytes() []byte {
	r := metadata.Root(goodExpiry)
	r.Signed.Version = s.version
	for role, rk := range map[string]roleKeys{metadata.ROOT: s.root, metadata.TIMESTAMP: s.timestamp, metadata.SNAPSHOT: s.snapshot, metadata.TARGETS: s.targs} {
		for _, k := range rk.keys {
			must(r.Signed.AddKey(k.tuf, role))
		}
		r.Signed.Roles[role].Threshold = rk.threshold
	}
	if s.aliasTargets {
		id, a := s.targs.keys[0].alias()
		r.Signed.Keys[id] = a
		r.Signed.Roles[metadata.TARGETS].KeyIDs = append(r.Signed.Roles[metadata.TARGETS].KeyIDs, id)
	}
	for _, k := range s.signers {
		_, err := r.Sign(k.signer)
		must(err)
	}
	return toBytes(r)
}

// payload is one firmware image and the signed metadata that describes it.
type payload struct {
	path string // TUF target path
	data []byte
	meta verify.TargetMeta
}

func (p payload) sha256() string {
	s := sha256.Sum256(p.data)
	return hex.EncodeToString(s[:])
}

func (p payload) targetFile() *metadata.TargetFiles {
	t := metadata.TargetFile()
	t.Length = int64(len(p.data))
	s := sha256.Sum256(p.data)
	t.Hashes["sha256"] = s[:]
	custom, err := json.Marshal(map[string]any{verify.CustomKey: p.meta})
	must(err)
	raw := json.RawMessage(custom)
	t.Custom = &raw
	return t
}

// delegation is a delegated targets role, signed by its own keys.
type delegation struct {
	name    string
	keys    roleKeys
	signers []*key
	paths   []string
	version int64
	targets []payload
	// listAs, when set, lists keys[i] under the key id listAs[i] instead of its own, and
	// renames its signatures to match: a forged key id.
	listAs []string
	// hashPrefixes, when set, delegate by path_hash_prefixes instead of paths.
	hashPrefixes []string
	// hardware, when set, confines the role to these hardware ids (verify.HardwareField).
	hardware []string
}

// listedID is the key id the delegation lists k under.
func (d *delegation) listedID(k *key) string {
	for i, dk := range d.keys.keys {
		if dk == k && i < len(d.listAs) {
			return d.listAs[i]
		}
	}
	return k.id
}

// release is one state of a repository: its root chain, the versions of each role and
// what targets lists. build turns it into bundle Contents.
type release struct {
	roots          []rootSpec // the chain carried in the bundle, oldest first
	tsVersion      int64
	snapVersion    int64
	targetsVersion int64
	// snapshotTargetsVersion is the targets version snapshot names; 0 means targetsVersion.
	snapshotTargetsVersion int64
	tsExpires              time.Time
	snapExpires            time.Time
	targetsExpires         time.Time
	targets                []payload
	delegation             *delegation
	targetsSigners         []*key // nil: the newest root's targets keys
	// carry lists the payloads put in the bundle; nil means every listed payload.
	carry []payload
	// junkTimestampSignatures pads the timestamp with that many signatures by key ids
	// nobody lists.
	junkTimestampSignatures int
}

func (r release) newest() rootSpec { return r.roots[len(r.roots)-1] }

func (r release) build() *bundle.Contents {
	c := &bundle.Contents{Roots: map[int64][]byte{}, Delegated: map[string][]byte{}}
	for _, s := range r.roots {
		c.Roots[s.version] = s.bytes()
	}
	root := r.newest()
	exp := func(t time.Time) time.Time {
		if t.IsZero() {
			return goodExpiry
		}
		return t
	}
	ver := func(v int64) int64 {
		if v == 0 {
			return 1
		}
		return v
	}

	targets := metadata.Targets(exp(r.targetsExpires))
	targets.Signed.Version = ver(r.targetsVersion)
	for _, p := range r.targets {
		targets.Signed.Targets[p.path] = p.targetFile()
	}
	snapshot := metadata.Snapshot(exp(r.snapExpires))
	snapshot.Signed.Version = ver(r.snapVersion)
	stv := r.snapshotTargetsVersion
	if stv == 0 {
		stv = ver(r.targetsVersion)
	}
	snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(stv)
	if d := r.delegation; d != nil {
		dm := metadata.Targets(goodExpiry)
		dm.Signed.Version = ver(d.version)
		for _, p := range d.targets {
			dm.Signed.Targets[p.path] = p.targetFile()
		}
		for _, k := range d.signers {
			_, err := dm.Sign(k.signer)
			must(err)
			dm.Signatures[len(dm.Signatures)-1].KeyID = d.listedID(k)
		}
		c.Delegated[d.name] = toBytes(dm)
		snapshot.Signed.Meta[d.name+".json"] = metadata.MetaFile(ver(d.version))

		targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		role := metadata.DelegatedRole{Name: d.name, Threshold: d.keys.threshold, Terminating: true, Paths: d.paths}
		if d.hashPrefixes != nil {
			role.Paths, role.PathHashPrefixes = nil, d.hashPrefixes
		}
		if d.hardware != nil {
			role.UnrecognizedFields = map[string]any{verify.HardwareField: d.hardware}
		}
		for _, k := range d.keys.keys {
			targets.Signed.Delegations.Keys[d.listedID(k)] = k.tuf
			role.KeyIDs = append(role.KeyIDs, d.listedID(k))
		}
		targets.Signed.Delegations.Roles = []metadata.DelegatedRole{role}
	}
	signers := r.targetsSigners
	if signers == nil {
		signers = root.targs.keys
	}
	for _, k := range signers {
		_, err := targets.Sign(k.signer)
		must(err)
	}
	if root.aliasTargets {
		// The same key signs again under its second id: one key, two signatures.
		id, _ := root.targs.keys[0].alias()
		targets.Signatures = append(targets.Signatures, metadata.Signature{KeyID: id, Signature: targets.Signatures[0].Signature})
	}
	c.Targets = toBytes(targets)

	for _, k := range root.snapshot.keys {
		_, err := snapshot.Sign(k.signer)
		must(err)
	}
	c.Snapshot = toBytes(snapshot)

	timestamp := metadata.Timestamp(exp(r.tsExpires))
	timestamp.Signed.Version = ver(r.tsVersion)
	sm := metadata.MetaFile(snapshot.Signed.Version)
	sm.Length = int64(len(c.Snapshot))
	sum := sha256.Sum256(c.Snapshot)
	sm.Hashes["sha256"] = sum[:]
	timestamp.Signed.Meta["snapshot.json"] = sm
	for _, k := range root.timestamp.keys {
		_, err := timestamp.Sign(k.signer)
		must(err)
	}
	for i := range r.junkTimestampSignatures {
		timestamp.Signatures = append(timestamp.Signatures, metadata.Signature{KeyID: fmt.Sprintf("%06d", i)})
	}
	c.Timestamp = toBytes(timestamp)

	carry := r.carry
	if carry == nil {
		carry = append([]payload{}, r.targets...)
		if r.delegation != nil {
			carry = append(carry, r.delegation.targets...)
		}
	}
	seen := map[string]bool{}
	for _, p := range carry {
		if seen[p.sha256()] {
			continue
		}
		seen[p.sha256()] = true
		c.Payloads = append(c.Payloads, source(p.data))
	}
	sort.Slice(c.Payloads, func(i, j int) bool { return c.Payloads[i].SHA256 < c.Payloads[j].SHA256 })
	return c
}

func toBytes[T metadata.Roles](m *metadata.Metadata[T]) []byte {
	b, err := m.ToBytes(false)
	must(err)
	return b
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("tampergen: %v", err))
	}
}
