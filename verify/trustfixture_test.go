package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// The fixtures here build real TUF repositories with go-tuf's metadata API and ed25519
// keys from fixed seeds (test-only keys), and write real bundles with bundle.Write.

var (
	fxNow     = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	fxExpires = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
)

type fxKey struct {
	name string
	priv ed25519.PrivateKey
	key  *metadata.Key
	id   string
}

func fxNewKey(t testing.TB, name string) fxKey {
	seed := sha256.Sum256([]byte("fieldflash-test-" + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return fxKey{name: name, priv: priv, key: k, id: id}
}

// fxAlias is k's key under a second key id: the key object carries one extra field, so
// its canonical form, and with it its TUF key id, differ while the key does not.
func fxAlias(t testing.TB, k fxKey, note string) (string, *metadata.Key) {
	a := &metadata.Key{Type: k.key.Type, Scheme: k.key.Scheme, Value: k.key.Value,
		UnrecognizedFields: map[string]any{"x-note": note}}
	id, err := KeyID(a)
	if err != nil {
		t.Fatal(err)
	}
	return id, a
}

func fxSign[T metadata.Roles](t testing.TB, md *metadata.Metadata[T], keys ...fxKey) {
	md.ClearSignatures()
	for _, k := range keys {
		s, err := signature.LoadED25519Signer(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := md.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
}

func fxBytes[T metadata.Roles](t testing.TB, md *metadata.Metadata[T]) []byte {
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fxRepo is one vendor's TUF repository: a root chain, the top-level roles, delegated
// roles, and the payloads the next bundle carries.
type fxRepo struct {
	t         testing.TB
	roots     map[int64][]byte
	root      *metadata.Metadata[metadata.RootType]
	rootKeys  []fxKey
	ts        *metadata.Metadata[metadata.TimestampType]
	snap      *metadata.Metadata[metadata.SnapshotType]
	targets   *metadata.Metadata[metadata.TargetsType]
	delegated map[string]*metadata.Metadata[metadata.TargetsType]
	signers   map[string][]fxKey // timestamp, snapshot, targets and delegated roles
	payloads  map[string][]byte  // sha256 hex -> content the bundle carries
	// tamper, when set, changes a role's metadata after it was signed.
	tamper map[string]func(sigs *[]metadata.Signature, signed any)
}

// fxNewRepo makes a repository with root v1 and one key per top-level role.
func fxNewRepo(t testing.TB) *fxRepo {
	r := &fxRepo{
		t: t, roots: map[int64][]byte{}, delegated: map[string]*metadata.Metadata[metadata.TargetsType]{},
		signers: map[string][]fxKey{}, payloads: map[string][]byte{},
		tamper: map[string]func(*[]metadata.Signature, any){},
	}
	r.root = metadata.Root(fxExpires)
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		k := fxNewKey(t, role+"-1")
		if err := r.root.Signed.AddKey(k.key, role); err != nil {
			t.Fatal(err)
		}
		if role == "root" {
			r.rootKeys = []fxKey{k}
		} else {
			r.signers[role] = []fxKey{k}
		}
	}
	fxSign(t, r.root, r.rootKeys...)
	r.roots[1] = fxBytes(t, r.root)
	r.ts = metadata.Timestamp(fxExpires)
	r.snap = metadata.Snapshot(fxExpires)
	r.targets = metadata.Targets(fxExpires)
	return r
}

// pinned is the repository's first root, as an app would pin it.
func (r *fxRepo) pinned() PinnedRoot { return PinnedRoot{Name: "acme", Root: r.roots[1]} }

func (r *fxRepo) opts(st State) Options {
	return Options{Roots: []PinnedRoot{r.pinned()}, State: st, Now: func() time.Time { return fxNow }}
}

// rotateRoot writes the next root version: change edits it, and it is signed by the
// old root keys and the new ones (both thresholds met unless the test says otherwise).
func (r *fxRepo) rotateRoot(change func(*metadata.RootType), signers ...fxKey) {
	next := metadata.Root(fxExpires)
	raw := fxBytes(r.t, r.root)
	if _, err := next.FromBytes(raw); err != nil {
		r.t.Fatal(err)
	}
	next.Signed.Version++
	change(&next.Signed)
	fxSign(r.t, next, signers...)
	r.root = next
	r.roots[next.Signed.Version] = fxBytes(r.t, next)
}

// fxMeta is the custom metadata of a plain app image for acme-gw-r1.
func fxMeta() TargetMeta {
	return TargetMeta{HardwareIDs: []string{"acme-gw-r1"}, Version: "1.0.0", ReleaseCounter: 5, Component: "app"}
}

// addTarget lists content at path in role ("targets" or a delegated role) with meta and
// makes the bundle carry it.
func (r *fxRepo) addTarget(role, path string, content []byte, meta TargetMeta) string {
	tf, err := metadata.TargetFile().FromBytes(path, content, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	custom, err := json.Marshal(map[string]any{CustomKey: meta})
	if err != nil {
		r.t.Fatal(err)
	}
	raw := json.RawMessage(custom)
	tf.Custom = &raw
	r.role(role).Signed.Targets[path] = tf
	sha := hex.EncodeToString(tf.Hashes["sha256"])
	r.payloads[sha] = content
	return sha
}

func (r *fxRepo) role(name string) *metadata.Metadata[metadata.TargetsType] {
	if name == "targets" {
		return r.targets
	}
	m, ok := r.delegated[name]
	if !ok {
		r.t.Fatalf("no role %s", name)
	}
	return m
}

// delegate makes targets delegate paths to a new role signed by keys with threshold.
func (r *fxRepo) delegate(name string, paths []string, threshold int, terminating bool, keys ...fxKey) {
	if r.targets.Signed.Delegations == nil {
		r.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
	}
	d := r.targets.Signed.Delegations
	role := metadata.DelegatedRole{Name: name, Threshold: threshold, Terminating: terminating, Paths: paths}
	for _, k := range keys {
		d.Keys[k.id] = k.key
		role.KeyIDs = append(role.KeyIDs, k.id)
	}
	d.Roles = append(d.Roles, role)
	r.delegated[name] = metadata.Targets(fxExpires)
	r.signers[name] = keys
}

// release bumps timestamp, snapshot and targets (and delegated) versions, as a new
// publication of the repository does.
func (r *fxRepo) release() {
	r.ts.Signed.Version++
	r.snap.Signed.Version++
	r.targets.Signed.Version++
	for _, d := range r.delegated {
		d.Signed.Version++
	}
}

// contents signs every role and returns what a bundle of the repository holds now.
func (r *fxRepo) contents() *bundle.Contents {
	c := &bundle.Contents{Roots: map[int64][]byte{}, Delegated: map[string][]byte{}}
	for v, b := range r.roots {
		c.Roots[v] = b
	}
	r.snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for name, d := range r.delegated {
		fxSign(r.t, d, r.signers[name]...)
		r.applyTamper(name, &d.Signatures, d.Signed)
		c.Delegated[name] = fxBytes(r.t, d)
		r.snap.Signed.Meta[name+".json"] = metadata.MetaFile(d.Signed.Version)
	}
	fxSign(r.t, r.targets, r.signers["targets"]...)
	r.applyTamper("targets", &r.targets.Signatures, r.targets.Signed)
	c.Targets = fxBytes(r.t, r.targets)
	r.snap.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	fxSign(r.t, r.snap, r.signers["snapshot"]...)
	r.applyTamper("snapshot", &r.snap.Signatures, r.snap.Signed)
	c.Snapshot = fxBytes(r.t, r.snap)
	r.ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metadata.MetaFile(r.snap.Signed.Version)}
	fxSign(r.t, r.ts, r.signers["timestamp"]...)
	r.applyTamper("timestamp", &r.ts.Signatures, r.ts.Signed)
	c.Timestamp = fxBytes(r.t, r.ts)
	for sha, content := range r.payloads {
		c.Payloads = append(c.Payloads, bundle.PayloadSource{
			SHA256: sha, Size: int64(len(content)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil },
		})
	}
	return c
}

func (r *fxRepo) applyTamper(role string, sigs *[]metadata.Signature, signed any) {
	if f := r.tamper[role]; f != nil {
		f(sigs, signed)
	}
}

// write writes a bundle of the repository as it is now and returns its path.
func (r *fxRepo) write(name string) string {
	return fxWrite(r.t, name, r.contents())
}

func fxWrite(t testing.TB, name string, c *bundle.Contents) string {
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bundle.Write(f, c); err != nil {
		t.Fatal(err)
	}
	return path
}

// fxBasic is a repository with one raw app payload in top-level targets.
func fxBasic(t testing.TB) (*fxRepo, string) {
	r := fxNewRepo(t)
	sha := r.addTarget("targets", "acme-gw/app-1.0.0.bin", []byte("acme gateway application 1.0.0\x00\x01\x02"), fxMeta())
	return r, sha
}

// fxRefusal runs VerifyFile and checks it refuses with code and a message that names the
// bundle, a thing and a next step.
func fxRefusal(t *testing.T, path string, opts Options, code Code) *Error {
	t.Helper()
	v, err := VerifyFile(path, opts)
	if err == nil {
		t.Fatalf("verified %s (%+v), want refusal %q", path, v.Targets, code)
	}
	ve, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not *verify.Error", err, err)
	}
	if ve.Code != code {
		t.Fatalf("refused with %q (%v), want %q", ve.Code, err, code)
	}
	if ve.Bundle != filepath.Base(path) || ve.Reason == "" || ve.Next == "" {
		t.Fatalf("refusal %q lacks bundle, reason or next step: %+v", err, ve)
	}
	t.Logf("%s: %v", code, err)
	return ve
}

func fxAccept(t *testing.T, path string, opts Options) *Verified {
	t.Helper()
	v, err := VerifyFile(path, opts)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	return v
}
