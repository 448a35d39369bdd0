package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Decoding of the bundle's metadata: go-tuf's parser, then the shape checks go-tuf leaves
// to its caller. go-tuf dereferences map entries it expects (timestamp's snapshot.json,
// a role's keys) without looking, so a hostile file with a null in the right place would
// crash the verifier instead of being refused.

const nextRebuild = "the bundle is damaged or was not made by a TUF tool; ask the release team for a new one"

// ParseRoot, ParseTimestamp, ParseSnapshot and ParseTargets read one metadata file the way
// verify reads a bundle's before it trusts any of it: within MaxSignatures, MaxKeys and
// MaxRoleKeyIDs, never panicking, with the gaps go-tuf leaves to its caller closed (null
// entries, key ids that are not their keys'). They check no signature. Refusals are *Error.
func ParseRoot(raw []byte, thing string) (*metadata.Metadata[metadata.RootType], error) {
	md, e := decodeRoot(raw, thing)
	if e != nil {
		return nil, e
	}
	return md, nil
}

// ParseTimestamp: see ParseRoot.
func ParseTimestamp(raw []byte, thing string) (*metadata.Metadata[metadata.TimestampType], error) {
	md, e := decodeTimestamp(raw, thing)
	if e != nil {
		return nil, e
	}
	return md, nil
}

// ParseSnapshot: see ParseRoot.
func ParseSnapshot(raw []byte, thing string) (*metadata.Metadata[metadata.SnapshotType], error) {
	md, e := decodeSnapshot(raw, thing)
	if e != nil {
		return nil, e
	}
	return md, nil
}

// ParseTargets: see ParseRoot.
func ParseTargets(raw []byte, thing string) (*metadata.Metadata[metadata.TargetsType], error) {
	md, e := decodeTargets(raw, thing)
	if e != nil {
		return nil, e
	}
	return md, nil
}

func decodeRoot(raw []byte, thing string) (*metadata.Metadata[metadata.RootType], *Error) {
	md, err := fromBytes(raw, metadata.Root().FromBytes, thing)
	if err != nil {
		return nil, err
	}
	for name, k := range md.Signed.Keys {
		if k == nil {
			return nil, errorf(CodeFormat, thing, nextRebuild, "key %s is null", shortKey(name))
		}
	}
	if e := checkKeyIDs(md.Signed.Keys, thing); e != nil {
		return nil, e
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		r, ok := md.Signed.Roles[role]
		if !ok || r == nil {
			return nil, errorf(CodeMetadata, thing, nextRebuild, "names no keys for the %s role", role)
		}
	}
	for name, r := range md.Signed.Roles {
		if r == nil {
			return nil, errorf(CodeFormat, thing, nextRebuild, "role %s is null", name)
		}
	}
	return md, nil
}

func decodeTimestamp(raw []byte, thing string) (*metadata.Metadata[metadata.TimestampType], *Error) {
	md, err := fromBytes(raw, metadata.Timestamp().FromBytes, thing)
	if err != nil {
		return nil, err
	}
	if e := checkMetaFiles(md.Signed.Meta, thing); e != nil {
		return nil, e
	}
	if md.Signed.Meta["snapshot.json"] == nil {
		return nil, errorf(CodeMetadata, thing, nextRebuild, "names no snapshot.json")
	}
	return md, nil
}

func decodeSnapshot(raw []byte, thing string) (*metadata.Metadata[metadata.SnapshotType], *Error) {
	md, err := fromBytes(raw, metadata.Snapshot().FromBytes, thing)
	if err != nil {
		return nil, err
	}
	if e := checkMetaFiles(md.Signed.Meta, thing); e != nil {
		return nil, e
	}
	if md.Signed.Meta["targets.json"] == nil {
		return nil, errorf(CodeMetadata, thing, nextRebuild, "names no targets.json")
	}
	return md, nil
}

func decodeTargets(raw []byte, thing string) (*metadata.Metadata[metadata.TargetsType], *Error) {
	md, err := fromBytes(raw, metadata.Targets().FromBytes, thing)
	if err != nil {
		return nil, err
	}
	for path, tf := range md.Signed.Targets {
		if tf == nil {
			return nil, errorf(CodeFormat, thing, nextRebuild, "target %q is null", path)
		}
		if tf.Length < 0 {
			return nil, errorf(CodeMetadata, thing, nextRebuild, "target %q has a negative length", path)
		}
	}
	if d := md.Signed.Delegations; d != nil {
		for name, k := range d.Keys {
			if k == nil {
				return nil, errorf(CodeFormat, thing, nextRebuild, "delegation key %s is null", shortKey(name))
			}
		}
		if e := checkKeyIDs(d.Keys, thing); e != nil {
			return nil, e
		}
		if d.Roles != nil && d.SuccinctRoles != nil {
			return nil, errorf(CodeMetadata, thing, nextRebuild, "delegates with both roles and succinct_roles")
		}
		if s := d.SuccinctRoles; s != nil && (s.BitLength < 1 || s.BitLength > 32) {
			return nil, errorf(CodeMetadata, thing, nextRebuild, "succinct_roles bit_length %d is outside 1..32", s.BitLength)
		}
		if s := d.SuccinctRoles; s != nil {
			if raw, ok := s.UnrecognizedFields[HardwareField]; ok {
				if _, err := hardwareList(raw); err != nil {
					return nil, errorf(CodeMetadata, thing, nextRebuild, "succinct_roles: %v", err)
				}
			}
		}
		for _, r := range d.Roles {
			if len(r.Paths) > 0 && len(r.PathHashPrefixes) > 0 {
				return nil, errorf(CodeMetadata, thing, nextRebuild, "delegated role %s has both paths and path_hash_prefixes; the TUF spec allows one of them", r.Name)
			}
			if raw, ok := r.UnrecognizedFields[HardwareField]; ok {
				if _, err := hardwareList(raw); err != nil {
					return nil, errorf(CodeMetadata, thing, nextRebuild, "delegated role %s: %v", r.Name, err)
				}
			}
		}
	}
	return md, nil
}

// checkKeyIDs refuses a key listed under an id that is not its own. The TUF spec's key id
// is the hex SHA-256 of the key's canonical JSON, so an id stands for exactly one key;
// go-tuf takes the ids a file gives on trust, and a root could otherwise list an
// attacker's key under a vendor's published id and show that id as its signer.
func checkKeyIDs(keys map[string]*metadata.Key, thing string) *Error {
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		own, err := KeyID(keys[id])
		if err != nil {
			return errorf(CodeFormat, thing, nextRebuild, "key %s cannot be encoded to compute its id: %v", shortKey(id), err)
		}
		if own != id {
			return errorf(CodeMetadata, thing, "do not trust it; ask the vendor for metadata made by a TUF tool, and compare key fingerprints with the ones they publish",
				"lists a key under the id %s, but that key's own id (the SHA-256 of its canonical JSON) is %s: a key id must be computed from its key", shortKey(id), shortKey(own))
		}
	}
	return nil
}

// KeyID is the TUF key id of k, computed from the key: the hex SHA-256 of its canonical
// JSON (keytype, scheme, keyval and any other field it carries).
func KeyID(k *metadata.Key) (string, error) {
	c, err := cjson.EncodeCanonical(k)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

func checkMetaFiles(meta map[string]*metadata.MetaFiles, thing string) *Error {
	for name, m := range meta {
		if m == nil {
			return errorf(CodeFormat, thing, nextRebuild, "entry for %s is null", name)
		}
	}
	return nil
}

// Bounds on one metadata file, checked before go-tuf parses it. go-tuf's duplicate
// signature check is quadratic in the number of signatures, and its signature check
// encodes the whole file once per key id a role lists: an unsigned 4 MiB file of 150,000
// junk signatures would cost half a minute before anything is refused. Real repositories
// stay far below these.
const (
	MaxSignatures = 256  // signatures on one metadata file
	MaxKeys       = 1024 // keys one root or targets file lists (root keys, delegation keys)
	MaxRoleKeyIDs = 64   // key ids one role lists (a top-level role in root, a delegated role)
)

// metadataShape is just enough of a metadata file to count what MaxSignatures, MaxKeys and
// MaxRoleKeyIDs bound; encoding/json reads it in linear time.
type metadataShape struct {
	Signatures []json.RawMessage `json:"signatures"`
	Signed     struct {
		Keys        map[string]json.RawMessage `json:"keys"`
		Roles       map[string]roleShape       `json:"roles"` // root
		Delegations *struct {
			Keys          map[string]json.RawMessage `json:"keys"`
			Roles         []roleShape                `json:"roles"`
			SuccinctRoles *roleShape                 `json:"succinct_roles"`
		} `json:"delegations"`
	} `json:"signed"`
}

type roleShape struct {
	Name   string            `json:"name"`
	KeyIDs []json.RawMessage `json:"keyids"`
}

// checkBounds refuses a file with more signatures, keys or key ids per role than the
// bounds, before any quadratic work is done on it.
func checkBounds(raw []byte, thing string) *Error {
	var m metadataShape
	if err := json.Unmarshal(raw, &m); err != nil {
		var syn *json.SyntaxError
		reason := "is not TUF metadata: " + err.Error()
		if errors.As(err, &syn) {
			reason = "is not valid TUF JSON: " + err.Error()
		}
		return &Error{Code: CodeFormat, Thing: thing, Reason: reason, Next: nextRebuild, Err: err}
	}
	const next = "do not trust it; real TUF metadata stays far below this, so the file was padded; ask the release team for a new bundle"
	if n := len(m.Signatures); n > MaxSignatures {
		return errorf(CodeTooLarge, thing, next, "carries %d signatures; at most %d are read", n, MaxSignatures)
	}
	keys := len(m.Signed.Keys)
	roles := make([]roleShape, 0, len(m.Signed.Roles))
	for name, r := range m.Signed.Roles {
		r.Name = name
		roles = append(roles, r)
	}
	if d := m.Signed.Delegations; d != nil {
		keys += len(d.Keys)
		roles = append(roles, d.Roles...)
		if d.SuccinctRoles != nil {
			r := *d.SuccinctRoles
			r.Name = "succinct_roles"
			roles = append(roles, r)
		}
	}
	if keys > MaxKeys {
		return errorf(CodeTooLarge, thing, next, "lists %d keys; at most %d are read", keys, MaxKeys)
	}
	for _, r := range roles {
		if n := len(r.KeyIDs); n > MaxRoleKeyIDs {
			return errorf(CodeTooLarge, thing, next, "role %q lists %d key ids; at most %d are read", r.Name, n, MaxRoleKeyIDs)
		}
	}
	return nil
}

// fromBytes runs one of go-tuf's FromBytes and turns its failure, or panic, into a
// refusal of thing. The file's bounds are checked first.
func fromBytes[T metadata.Roles](raw []byte, from func([]byte) (*metadata.Metadata[T], error), thing string) (md *metadata.Metadata[T], e *Error) {
	if e := checkBounds(raw, thing); e != nil {
		return nil, e
	}
	err := guard(func() error {
		var err error
		md, err = from(raw)
		return err
	})
	if err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		reason := "is not TUF metadata: " + err.Error()
		if errors.As(err, &syn) || errors.As(err, &typ) {
			reason = "is not valid TUF JSON: " + err.Error()
		}
		return nil, &Error{Code: CodeFormat, Thing: thing, Reason: reason, Next: nextRebuild, Err: err}
	}
	return md, nil
}

// guard runs f and turns a panic inside go-tuf into an error: a verifier must refuse a
// hostile file, never crash on it.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed metadata (%v)", r)
		}
	}()
	return f()
}

// sameSigned reports whether two metadata files say the same thing: equal canonical JSON
// of their signed parts. Signatures may differ.
func sameSigned(a, b any) bool {
	ca, err1 := cjson.EncodeCanonical(a)
	cb, err2 := cjson.EncodeCanonical(b)
	return err1 == nil && err2 == nil && string(ca) == string(cb)
}

func shortKey(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
