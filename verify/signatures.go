package verify

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// go-tuf answers "not enough signatures" and nothing more. A technician needs to know
// which of three very different things happened: a signature that does not verify (the
// file was altered), a key that a newer root or delegation dropped (revoked), or simply
// too few keys. So the signatures are read again here, with go-tuf's rules: only keys the
// delegator lists for the role count, and one key counts once however many key ids name
// it (keys are told apart by their public key, as go-tuf's VerifyDelegate does).

// authority is who may sign a role: the keys a root or a delegating targets role lists
// for it, and how many must sign.
type authority struct {
	label     string // "root v2", "targets v3": who says so, for messages
	role      string
	keys      map[string]*metadata.Key
	keyIDs    []string
	threshold int
}

func rootAuthority(r *metadata.Metadata[metadata.RootType], role string) (authority, bool) {
	ro, ok := r.Signed.Roles[role]
	if !ok || ro == nil {
		return authority{}, false
	}
	return authority{
		label:     fmt.Sprintf("root v%d", r.Signed.Version),
		role:      role,
		keys:      r.Signed.Keys,
		keyIDs:    ro.KeyIDs,
		threshold: ro.Threshold,
	}, true
}

func delegationAuthority(t *metadata.Metadata[metadata.TargetsType], delegator, role string) (authority, bool) {
	d := t.Signed.Delegations
	if d == nil {
		return authority{}, false
	}
	a := authority{label: fmt.Sprintf("%s v%d", delegator, t.Signed.Version), role: role, keys: d.Keys}
	switch {
	case d.Roles != nil:
		i := slices.IndexFunc(d.Roles, func(r metadata.DelegatedRole) bool { return r.Name == role })
		if i < 0 {
			return authority{}, false
		}
		a.keyIDs, a.threshold = d.Roles[i].KeyIDs, d.Roles[i].Threshold
	case d.SuccinctRoles != nil && d.SuccinctRoles.IsDelegatedRole(role):
		a.keyIDs, a.threshold = d.SuccinctRoles.KeyIDs, d.SuccinctRoles.Threshold
	default:
		return authority{}, false
	}
	return a, true
}

// sigCheck is what the signatures on one file amount to under one authority.
type sigCheck struct {
	counted []string // key ids whose signatures count, one per distinct key
	bad     []string // key ids the authority lists whose signature does not verify
	revoked []revokedSig
	// sameKey pairs a counted key id with another id of the same public key that signed
	// too: the second signature does not count.
	sameKey  [][2]string
	distinct int // distinct public keys among the key ids the authority lists
	auth     authority
}

type revokedSig struct {
	keyID string
	by    string // the earlier authority that trusted the key: "root v1"
}

// checkSignatures reads sigs over signed under auth. earlier lists authorities that held
// the role before auth did, newest first: a valid signature by a key only they list is a
// revoked key's.
func checkSignatures(signed any, sigs []metadata.Signature, auth authority, earlier []authority) sigCheck {
	res := sigCheck{auth: auth}
	payload, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return res
	}
	current := map[string]bool{} // fingerprints of the keys auth lists
	for _, id := range auth.keyIDs {
		if k := auth.keys[id]; k != nil {
			if fp, ok := fingerprint(k); ok {
				current[fp] = true
			}
		}
	}
	res.distinct = len(current)
	counted := map[string]string{} // fingerprint -> the key id that counted for it
	for _, s := range sigs {
		if slices.Contains(auth.keyIDs, s.KeyID) {
			k := auth.keys[s.KeyID]
			if k == nil {
				continue
			}
			fp, ok := fingerprint(k)
			if !ok {
				continue
			}
			if !verifySig(k, s.Signature, payload) {
				res.bad = append(res.bad, s.KeyID)
				continue
			}
			switch first, ok := counted[fp]; {
			case !ok:
				counted[fp] = s.KeyID
				res.counted = append(res.counted, s.KeyID)
			case first != s.KeyID:
				res.sameKey = append(res.sameKey, [2]string{first, s.KeyID})
			}
			continue
		}
		for _, e := range earlier {
			k := e.keys[s.KeyID]
			if k == nil || !slices.Contains(e.keyIDs, s.KeyID) {
				continue
			}
			fp, ok := fingerprint(k)
			if !ok || current[fp] || !verifySig(k, s.Signature, payload) {
				continue
			}
			res.revoked = append(res.revoked, revokedSig{keyID: s.KeyID, by: e.label})
			break
		}
	}
	return res
}

// refusal says why the signatures fall short, or nil when they meet the threshold.
func (c sigCheck) refusal(thing string) *Error {
	role := c.auth.role
	if c.auth.threshold < 1 {
		return errorf(CodeMetadata, thing, "ask the release team to fix the "+c.auth.label+" metadata",
			"%s sets a threshold of %d for %s; it must be at least 1", c.auth.label, c.auth.threshold, role)
	}
	if len(c.counted) >= c.auth.threshold {
		return nil
	}
	switch {
	case len(c.bad) > 0:
		return errorf(CodeBadSignature, thing,
			"do not flash it; get an unaltered copy of the bundle from the release team",
			"the signature of %s key %s does not verify: the file was changed after it was signed", role, shortKey(c.bad[0]))
	case len(c.revoked) > 0:
		r := c.revoked[0]
		return errorf(CodeRevokedKey, thing,
			fmt.Sprintf("ask the release team for a bundle signed with the current %s keys", role),
			"signed by key %s, which %s no longer trusts for %s (%s did): the key was revoked", shortKey(r.keyID), c.auth.label, role, r.by)
	}
	var short []string
	for _, id := range c.counted {
		short = append(short, shortKey(id))
	}
	signedBy := ""
	if len(short) > 0 {
		signedBy = " (" + strings.Join(short, ", ") + ")"
	}
	next := fmt.Sprintf("ask the release team for a bundle signed by at least %d %s keys", c.auth.threshold, role)
	switch c.auth.threshold {
	case 1:
		next = fmt.Sprintf("ask the release team for a bundle signed by a current %s key", role)
	case 2:
		next = fmt.Sprintf("ask the release team for a bundle signed by both %s keys", role)
	}
	if len(c.sameKey) == 0 {
		return errorf(CodeThreshold, thing, next,
			"signed by %d of %d required %s keys%s; %s lists %d", len(c.counted), c.auth.threshold, role, signedBy, c.auth.label, len(c.auth.keyIDs))
	}
	// A key listed under several ids looks like several keys to whoever counts ids: say
	// which ids are one key, and how many distinct keys the authority really lists.
	var same []string
	for _, p := range c.sameKey {
		same = append(same, fmt.Sprintf("key ids %s and %s are the same key, which counts once", shortKey(p[0]), shortKey(p[1])))
	}
	keys := "keys"
	if c.distinct == 1 {
		keys = "key"
	}
	next = fmt.Sprintf("ask the release team for a bundle signed by %d distinct %s keys", c.auth.threshold, role)
	if c.distinct < c.auth.threshold {
		delegator, _, _ := strings.Cut(c.auth.label, " ")
		next = fmt.Sprintf("no bundle can meet that threshold; the release team must list %d distinct %s keys in new %s metadata and sign with them",
			c.auth.threshold, role, delegator)
	}
	return errorf(CodeThreshold, thing, next,
		"signed by %d of %d required %s keys%s: %s; %s lists %d key ids for %s but %d distinct %s",
		len(c.counted), c.auth.threshold, role, signedBy, strings.Join(same, "; "), c.auth.label, len(c.auth.keyIDs), role, c.distinct, keys)
}

// KeyFingerprint identifies a key by its key material alone: the hex SHA-256 of the DER
// SubjectPublicKeyInfo of its public key, which `openssl pkey -pubin -outform DER |
// sha256sum` prints too. Two key ids (the same key with another scheme string or an
// extra field) can name one key; their fingerprint is the same. Compare keys by it.
func KeyFingerprint(k *metadata.Key) (string, error) {
	if k == nil {
		return "", errors.New("no key")
	}
	fp, ok := fingerprint(k)
	if !ok {
		return "", fmt.Errorf("%s key cannot be read as a public key", k.Type)
	}
	return fp, nil
}

// fingerprint identifies a key by its public key, as go-tuf does when counting.
func fingerprint(k *metadata.Key) (fp string, ok bool) {
	defer func() {
		if recover() != nil {
			fp, ok = "", false
		}
	}()
	pub, err := k.ToPublicKey()
	if err != nil {
		return "", false
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), true
}

// verifySig checks one signature the way go-tuf's VerifyDelegate does, scheme by scheme.
func verifySig(k *metadata.Key, sig, payload []byte) bool {
	pub, err := k.ToPublicKey()
	if err != nil {
		return false
	}
	hash := crypto.Hash(0)
	if k.Type != metadata.KeyTypeEd25519 {
		switch k.Scheme {
		case metadata.KeySchemeECDSA_SHA2_P384:
			hash = crypto.SHA384
		default:
			hash = crypto.SHA256
		}
	}
	var v signature.Verifier
	if k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 {
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return false
		}
		v, err = signature.LoadRSAPSSVerifier(rk, hash, &rsa.PSSOptions{Hash: crypto.SHA256})
	} else {
		v, err = signature.LoadVerifier(pub, hash)
	}
	if err != nil {
		return false
	}
	return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil
}
