package release

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// keyring is who may sign a role: its keys and how many must.
type keyring struct {
	By        string // "root v3", "targets"
	Keys      map[string]*metadata.Key
	KeyIDs    []string
	Threshold int
}

// signers returns the ids of keys in the ring whose signatures over payload verify, counting
// one public key once however many ids it is listed under (as go-tuf does).
func (k keyring) signers(payload []byte, sigs []metadata.Signature) []string {
	var ids []string
	seen := map[string]bool{}
	for _, id := range k.KeyIDs {
		key, ok := k.Keys[id]
		if !ok {
			continue
		}
		for _, s := range sigs {
			if s.KeyID != id || !verifySig(key, payload, s.Signature) {
				continue
			}
			fp := keyFingerprint(key)
			if !seen[fp] {
				seen[fp] = true
				ids = append(ids, id)
			}
			break
		}
	}
	return ids
}

func keyFingerprint(k *metadata.Key) string {
	pub, err := k.ToPublicKey()
	if err != nil {
		return "bad:" + KeyID(k)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "bad:" + KeyID(k)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func verifySig(k *metadata.Key, payload, sig []byte) bool {
	pub, err := k.ToPublicKey()
	if err != nil {
		return false
	}
	hash := crypto.SHA256
	if k.Type == metadata.KeyTypeEd25519 {
		hash = crypto.Hash(0)
	}
	v, err := signature.LoadVerifier(pub, hash)
	if err != nil {
		return false
	}
	return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil
}

// keyrings returns every keyring whose threshold m must meet: for root N the keys of root
// N-1 and of root N; for other roles the one that delegates them.
func (r *Repo) keyrings(m *roleMeta) ([]keyring, error) {
	switch {
	case m.Root != nil:
		v := m.Root.Signed.Version
		rings := []keyring{}
		if v > 1 {
			prev, _, err := r.rootVersion(v - 1)
			if err != nil {
				return nil, fmt.Errorf("root v%d: the previous root %d.root.json is needed to check it: %w", v, v-1, err)
			}
			rings = append(rings, rootRing(prev.Root, metadata.ROOT))
		}
		return append(rings, rootRing(m.Root, metadata.ROOT)), nil
	case m.Name == metadata.TARGETS || m.Name == metadata.SNAPSHOT || m.Name == metadata.TIMESTAMP:
		root, err := r.loadRoot()
		if err != nil {
			return nil, err
		}
		return []keyring{rootRing(root, m.Name)}, nil
	default:
		delegator, parent, i, err := r.findDelegation(m.Name)
		if err != nil {
			return nil, err
		}
		d := parent.Signed.Delegations.Roles[i]
		return []keyring{{By: delegator, Keys: parent.Signed.Delegations.Keys, KeyIDs: d.KeyIDs, Threshold: d.Threshold}}, nil
	}
}

func rootRing(root *metadata.Metadata[metadata.RootType], role string) keyring {
	rl := root.Signed.Roles[role]
	k := keyring{By: "root v" + strconv.FormatInt(root.Signed.Version, 10), Keys: root.Signed.Keys}
	if rl != nil {
		k.KeyIDs, k.Threshold = rl.KeyIDs, rl.Threshold
	}
	return k
}

// loadForSigning reads the role's file; "root" is the newest root, "N.root" a given one.
func (r *Repo) loadForSigning(role string) (*roleMeta, error) {
	if v, ok := strings.CutSuffix(role, ".root"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("role %s: write root versions as N.root, e.g. 2.root", role)
		}
		m, _, err := r.rootVersion(n)
		return m, err
	}
	return r.load(role)
}

// Sign adds one signature per key to the role's metadata in place. It changes nothing else:
// no version bump, other signatures stay. A key that is not one of the role's keys is
// refused, so a signature never lands where it cannot count.
func (r *Repo) Sign(role string, keys ...*SigningKey) error {
	m, err := r.loadForSigning(role)
	if err != nil {
		return err
	}
	rings, err := r.keyrings(m)
	if err != nil {
		return err
	}
	payload, err := m.canonical()
	if err != nil {
		return err
	}
	sigs := m.sigs()
	for _, k := range keys {
		id := k.ID()
		if !slices.ContainsFunc(rings, func(kr keyring) bool { return slices.Contains(kr.KeyIDs, id) }) {
			return fmt.Errorf("%s: key %s is not one of the keys of role %s (%s); sign with one of them, or add the key first", m.File, short(id), m.Name, ringKeys(rings))
		}
		// A signature that already verifies is kept: re-signing with ECDSA would change the
		// bytes (and every hash of them) for nothing.
		if slices.ContainsFunc(*sigs, func(s metadata.Signature) bool {
			return s.KeyID == id && verifySig(k.key, payload, s.Signature)
		}) {
			continue
		}
		sb, err := k.signer.SignMessage(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%s: signing with key %s: %w", m.File, short(id), err)
		}
		*sigs = slices.DeleteFunc(*sigs, func(s metadata.Signature) bool { return s.KeyID == id })
		*sigs = append(*sigs, metadata.Signature{KeyID: id, Signature: sb})
	}
	sortSignatures(*sigs)
	return r.save(m)
}

func ringKeys(rings []keyring) string {
	var parts []string
	for _, kr := range rings {
		ids := make([]string, len(kr.KeyIDs))
		for i, id := range kr.KeyIDs {
			ids[i] = short(id)
		}
		parts = append(parts, kr.By+": "+strings.Join(ids, " "))
	}
	return strings.Join(parts, "; ")
}

// RoleForFile guesses the role of a metadata file from its name: targets.json -> targets,
// 3.root.json -> root, acme-gw.json -> acme-gw.
func RoleForFile(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), ".json")
	if v, ok := strings.CutSuffix(base, ".root"); ok {
		if _, err := strconv.Atoi(v); err == nil {
			return metadata.ROOT
		}
	}
	return base
}

// Merge takes a copy of a role's metadata signed elsewhere and adds its signatures to the
// repository's file. The signed parts must be identical; every signature taken must verify
// with one of the role's keys. It returns the key ids whose signatures were new.
func (r *Repo) Merge(role string, data []byte) ([]string, error) {
	theirs, err := parseRoleMeta(role, role+".json", data)
	if err != nil {
		return nil, err
	}
	var ours *roleMeta
	if theirs.Root != nil {
		ours, _, err = r.rootVersion(theirs.Root.Signed.Version)
		if err != nil {
			return nil, fmt.Errorf("root v%d: this repository has no such root version (%v); merge signatures into the repository that made it", theirs.Root.Signed.Version, err)
		}
	} else {
		if ours, err = r.load(role); err != nil {
			return nil, err
		}
	}
	a, err := ours.canonical()
	if err != nil {
		return nil, err
	}
	b, err := theirs.canonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a, b) {
		ov, _ := ours.versionExpires()
		tv, _ := theirs.versionExpires()
		return nil, fmt.Errorf("%s: the copy's signed content differs from this repository's (copy v%d, here v%d); it was signed before a change: have it signed again from the current file", ours.File, tv, ov)
	}
	rings, err := r.keyrings(ours)
	if err != nil {
		return nil, err
	}
	keys := map[string]*metadata.Key{}
	for _, kr := range rings {
		for _, id := range kr.KeyIDs {
			keys[id] = kr.Keys[id]
		}
	}
	var added []string
	sigs := ours.sigs()
	for _, s := range *theirs.sigs() {
		key, ok := keys[s.KeyID]
		if !ok {
			return nil, fmt.Errorf("%s: the copy carries a signature by key %s, which is not a key of role %s (%s); refusing the copy", ours.File, short(s.KeyID), ours.Name, ringKeys(rings))
		}
		if !verifySig(key, a, s.Signature) {
			return nil, fmt.Errorf("%s: the copy's signature by key %s does not verify; have that key holder sign again", ours.File, short(s.KeyID))
		}
		if slices.ContainsFunc(*sigs, func(o metadata.Signature) bool { return o.KeyID == s.KeyID && verifySig(key, a, o.Signature) }) {
			continue
		}
		*sigs = slices.DeleteFunc(*sigs, func(o metadata.Signature) bool { return o.KeyID == s.KeyID })
		*sigs = append(*sigs, metadata.Signature{KeyID: s.KeyID, Signature: s.Signature})
		added = append(added, s.KeyID)
	}
	if len(added) == 0 {
		return nil, nil
	}
	sortSignatures(*sigs)
	if ours.Root != nil {
		// Keep root.json in step only when this is the newest root.
		newest, err := r.loadRoot()
		if err != nil {
			return nil, err
		}
		if newest.Signed.Version != ours.Root.Signed.Version {
			data, err := ours.bytes()
			if err != nil {
				return nil, err
			}
			return added, writeFileAtomic(r.metaPath(ours.File), data, 0o644)
		}
	}
	return added, r.save(ours)
}

// RoleStatus is one role's state as the repository holds it.
type RoleStatus struct {
	Role      string    `json:"role"`
	File      string    `json:"file"`
	Delegator string    `json:"delegator"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	// Signatures is one entry per keyring whose threshold applies (root N: root N-1's and
	// root N's; others: one).
	Signatures []SignatureCount `json:"signatures"`
	// Problems say what keeps the role from being bundled, each with the next step.
	Problems []string `json:"problems,omitempty"`
}

// SignatureCount counts valid signatures against one threshold.
type SignatureCount struct {
	By        string   `json:"by"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"key_ids"`
	SignedBy  []string `json:"signed_by"`
}

// Status is the whole repository's state.
type Status struct {
	Repository string       `json:"repository"`
	Dir        string       `json:"dir"`
	Roles      []RoleStatus `json:"roles"`
	Targets    []Target     `json:"targets"`
	// Ready is true when a bundle can be made: no role has a problem.
	Ready bool `json:"ready"`
}

// Status reports every role's version, expiry and signatures, and what is missing before a
// bundle can be made.
func (r *Repo) Status() (*Status, error) {
	root, err := r.loadRoot()
	if err != nil {
		return nil, err
	}
	st := &Status{Repository: rootName(root), Dir: r.Dir, Ready: true}
	now := r.now()

	var metas []*roleMeta
	versions, err := r.rootVersions()
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		m, _, err := r.rootVersion(v)
		if err != nil {
			return nil, err
		}
		metas = append(metas, m)
	}
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	delegators := map[string]string{}
	for _, tr := range roles {
		delegators[tr.Name] = tr.Delegator
		metas = append(metas, &roleMeta{Name: tr.Name, File: roleFileName(tr.Name), Targets: tr.Meta})
	}
	fresh, err := r.freshness()
	if err != nil {
		return nil, err
	}
	var missing []RoleStatus
	for _, name := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
		m, err := r.load(name)
		if err != nil {
			missing = append(missing, RoleStatus{Role: name, File: roleFileName(name), Delegator: metadata.ROOT, Problems: []string{"not made yet; run `fieldflash-release publish`"}})
			st.Ready = false
			continue
		}
		metas = append(metas, m)
	}

	for i, m := range metas {
		v, exp := m.versionExpires()
		rs := RoleStatus{Role: m.Name, File: m.File, Version: v, Expires: exp, Delegator: metadata.ROOT}
		if m.Root != nil {
			rs.File = fmt.Sprintf("%d.root.json", v)
		}
		if d, ok := delegators[m.Name]; ok {
			rs.Delegator = d
		}
		payload, err := m.canonical()
		if err != nil {
			return nil, err
		}
		rings, err := r.keyrings(m)
		if err != nil {
			return nil, err
		}
		for _, kr := range rings {
			sc := SignatureCount{By: kr.By, Threshold: kr.Threshold, KeyIDs: kr.KeyIDs, SignedBy: kr.signers(payload, *m.sigs())}
			if sc.SignedBy == nil {
				sc.SignedBy = []string{}
			}
			rs.Signatures = append(rs.Signatures, sc)
			if len(sc.SignedBy) < kr.Threshold {
				rs.Problems = append(rs.Problems, fmt.Sprintf("signed by %d of %d required keys of %s; sign with `fieldflash-release sign --role %s --key KEY`",
					len(sc.SignedBy), kr.Threshold, kr.By, signRoleArg(m, i == len(versions)-1)))
			}
		}
		// Only the newest root's expiry matters: older ones are walked through, not used.
		if (m.Root == nil || i == len(versions)-1) && !exp.After(now) {
			rs.Problems = append(rs.Problems, fmt.Sprintf("expired %s; run `fieldflash-release bump-expiry --role %s --expires 90d`", exp.Format(time.RFC3339), m.Name))
		}
		if p, ok := fresh[m.Name]; ok {
			rs.Problems = append(rs.Problems, p)
		}
		if len(rs.Problems) > 0 {
			st.Ready = false
		}
		st.Roles = append(st.Roles, rs)
	}
	st.Roles = append(st.Roles, missing...)
	if st.Targets, err = r.Targets(); err != nil {
		return nil, err
	}
	return st, nil
}

func signRoleArg(m *roleMeta, newest bool) string {
	if m.Root != nil && !newest {
		return strconv.FormatInt(m.Root.Signed.Version, 10) + ".root"
	}
	return m.Name
}
