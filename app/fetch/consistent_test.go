package fetch

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
)

// TestAConsistentSnapshotRepositoryMadeByAnotherTUFToolIsFetched serves a repository
// written directly with go-tuf's metadata API (not fieldflash-release) with
// consistent_snapshot on: versioned metadata names and hash-prefixed target files, as TUF
// repositories on CDNs are laid out.
func TestAConsistentSnapshotRepositoryMadeByAnotherTUFToolIsFetched(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "metadata"), 0o755)
	os.MkdirAll(filepath.Join(dir, "targets", "acme-gw"), 0o755)
	seed := sha256.Sum256([]byte("fieldflash-consistent-test"))
	priv := ed25519.NewKeyFromSeed(seed[:]) // test-only key, one for every role
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := metadata.KeyFromPublicKey(priv.Public())
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)

	write := func(name string, sign func(signature.Signer) error, bytesOf func() ([]byte, error)) []byte {
		t.Helper()
		if err := sign(signer); err != nil {
			t.Fatal(err)
		}
		b, err := bytesOf()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "metadata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	root := metadata.Root(expires)
	root.Signed.ConsistentSnapshot = true
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		root.Signed.AddKey(key, role)
	}
	rootBytes := write("1.root.json", func(s signature.Signer) error { _, err := root.Sign(s); return err }, func() ([]byte, error) { return root.ToBytes(true) })

	app := payload("consistent-app", 2<<20+17)
	tf, _ := metadata.TargetFile().FromBytes("acme-gw/app-2.0.0.bin", app, "sha256")
	custom, _ := json.Marshal(map[string]any{verify.CustomKey: meta("acme-gw-r2", "app", "2.0.0", 4)})
	raw := json.RawMessage(custom)
	tf.Custom = &raw
	if err := os.WriteFile(filepath.Join(dir, "targets", "acme-gw", sha(app)+".app-2.0.0.bin"), app, 0o644); err != nil {
		t.Fatal(err)
	}
	targets := metadata.Targets(expires)
	targets.Signed.Version = 3
	targets.Signed.Targets[tf.Path] = tf
	write("3.targets.json", func(s signature.Signer) error { _, err := targets.Sign(s); return err }, func() ([]byte, error) { return targets.ToBytes(true) })
	snap := metadata.Snapshot(expires)
	snap.Signed.Version = 5
	snap.Signed.Meta["targets.json"] = metadata.MetaFile(3)
	write("5.snapshot.json", func(s signature.Signer) error { _, err := snap.Sign(s); return err }, func() ([]byte, error) { return snap.ToBytes(true) })
	ts := metadata.Timestamp(expires)
	ts.Signed.Version = 8
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(5)
	write("timestamp.json", func(s signature.Signer) error { _, err := ts.Sign(s); return err }, func() ([]byte, error) { return ts.ToBytes(true) })

	m := newMirror(t, dir)
	l := &laptop{t: t, home: t.TempDir(), now: time.Now, state: verify.NewMemoryState(), roots: []verify.PinnedRoot{{Name: "acme", Root: rootBytes}}}
	l.setMirrors(m.URL)
	res, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotVersion != 5 || res.TargetsVersion != 3 || len(res.Targets) != 1 {
		t.Fatalf("snapshot v%d, targets v%d, %d fetched; want v5, v3 and the app", res.SnapshotVersion, res.TargetsVersion, len(res.Targets))
	}
	got, _ := os.ReadFile(res.Targets[0].File)
	if !bytes.Equal(got, app) {
		t.Fatal("the cached app differs")
	}
	if len(m.requests("/metadata/5.snapshot.json")) != 1 || len(m.requests("/targets/acme-gw/"+sha(app)+".app-2.0.0.bin")) == 0 {
		t.Fatalf("requests %v; want the versioned snapshot and the hash-prefixed target", m.requests("/"))
	}
	// And the bundle made from it verifies offline.
	out := filepath.Join(t.TempDir(), "c.fwb")
	if _, err := Bundle(BundleOptions{Home: l.home, Roots: l.roots, State: l.state, Hardware: "acme-gw-r2", Out: out}); err != nil {
		t.Fatal(err)
	}
}
