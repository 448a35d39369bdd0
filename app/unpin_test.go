package app

import (
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

// vendor is a repository made with the release tool, as a vendor's release desk runs it.
type vendor struct {
	t                         *testing.T
	repo                      *release.Repo
	root                      *release.SigningKey
	targets, snapshot, tstamp *release.SigningKey
	clock                     time.Time
	n                         int
}

func signingKey(t *testing.T, name string) *release.SigningKey {
	t.Helper()
	seed := sha256.Sum256([]byte("fieldflash-app-test-" + name)) // test-only keys
	k, err := release.NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newVendor(t *testing.T, name, keys string) *vendor {
	t.Helper()
	v := &vendor{t: t, clock: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC),
		root: signingKey(t, keys+"-root"), targets: signingKey(t, keys+"-targets"),
		snapshot: signingKey(t, keys+"-snapshot"), tstamp: signingKey(t, keys+"-timestamp")}
	one := func(k *release.SigningKey) release.RoleKeys {
		return release.RoleKeys{Keys: []*metadata.Key{k.Public()}, Threshold: 1}
	}
	r, err := release.Init(filepath.Join(t.TempDir(), "repo"), release.InitOptions{
		Name: name, Root: one(v.root), Targets: one(v.targets), Snapshot: one(v.snapshot), Timestamp: one(v.tstamp),
		Now: func() time.Time { return v.clock },
	})
	v.must(err)
	v.repo = r
	v.must(r.Sign("root", v.root))
	return v
}

func (v *vendor) must(err error) {
	v.t.Helper()
	if err != nil {
		v.t.Fatal(err)
	}
}

// rotateRoot makes the next root version with a new root key, signed by the old and the new.
func (v *vendor) rotateRoot(keyName string) {
	v.t.Helper()
	next := signingKey(v.t, keyName)
	_, err := v.repo.ChangeRoot(release.RootChange{Add: []*metadata.Key{next.Public()}, Remove: []string{v.root.ID()}})
	v.must(err)
	v.must(v.repo.Sign("root", v.root, next))
	v.root = next
}

// release publishes one more app image and bundles it.
func (v *vendor) release(version string) string {
	v.t.Helper()
	v.n++
	v.clock = v.clock.Add(time.Hour)
	img := filepath.Join(v.t.TempDir(), "app.bin")
	v.must(os.WriteFile(img, []byte("application "+version), 0o644))
	path := "acme-gw/app-" + version + ".bin"
	_, err := v.repo.AddTarget(release.NewTarget{Path: path, File: img,
		Meta: verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: version, ReleaseCounter: uint64(v.n), Component: "app"}})
	v.must(err)
	v.must(v.repo.Sign("targets", v.targets))
	v.must(v.repo.Publish(release.PublishOptions{SnapshotKeys: []*release.SigningKey{v.snapshot}, TimestampKeys: []*release.SigningKey{v.tstamp}}))
	out := filepath.Join(v.t.TempDir(), "acme-gw-"+version+".fwb")
	_, _, err = v.repo.BundleFile(out, []string{path})
	v.must(err)
	return out
}

func (v *vendor) firstRoot() []byte {
	v.t.Helper()
	b, err := v.repo.RoleFile("1.root")
	v.must(err)
	return b
}

// The vendor's advice after a key compromise: remove the old root, pin the fresh one.
// Bundles signed with the compromised keys must stop verifying at once, and the fresh
// root's bundles must verify, whatever this machine learned under the old pin.
func TestUnpinningACompromisedRootRemovesWhatWasLearnedUnderIt(t *testing.T) {
	home := t.TempDir()
	store, err := OpenTrustStore(home)
	if err != nil {
		t.Fatal(err)
	}
	state, err := NewDiskState(home)
	if err != nil {
		t.Fatal(err)
	}
	verifyAt := func(bundle string) (*verify.Verified, error) {
		roots, err := store.Roots()
		if err != nil {
			t.Fatal(err)
		}
		return verify.VerifyFile(bundle, verify.Options{Roots: roots, State: state,
			Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }})
	}

	old := newVendor(t, "acme", "old")
	if err := store.Add("acme", old.firstRoot()); err != nil {
		t.Fatal(err)
	}
	old.rotateRoot("old-root-2")
	old.rotateRoot("old-root-3")
	if v, err := verifyAt(old.release("1.0.0")); err != nil || v.RootVersion != 3 {
		t.Fatalf("the old chain's bundle: %v, %v; want it verified at root v3", v, err)
	}

	// Root v3's keys leak. The vendor starts over with a fresh root under the same name.
	fresh := newVendor(t, "acme", "fresh")
	if err := store.Remove("acme"); err != nil {
		t.Fatal(err)
	}
	if err := store.Add("acme", fresh.firstRoot()); err != nil {
		t.Fatal(err)
	}

	attack := old.release("6.6.6") // signed with the leaked keys, chain v1..v3
	if _, err := verifyAt(attack); verify.CodeOf(err) != verify.CodeUntrusted {
		t.Fatalf("a bundle signed by the unpinned, compromised root: err = %v; want it untrusted", err)
	}
	if v, err := verifyAt(fresh.release("2.0.0")); err != nil || v.RootVersion != 1 || v.Repository != "acme" {
		t.Fatalf("the fresh root's bundle: %+v, %v; want it verified at root v1", v, err)
	}
}

// Unpinning forgets the state of that repository only, and leaves no file of it behind.
func TestForgetRemovesEveryPinsStateOfOneRepository(t *testing.T) {
	home := t.TempDir()
	s, _ := NewDiskState(home)
	for _, key := range []string{"acme@00112233445566778899aabbccddeeff", "acme@ffeeddccbbaa99887766554433221100", "acme", "acme-labs@00112233445566778899aabbccddeeff", "Acme Devices@00112233445566778899aabbccddeeff"} {
		if err := s.Save(key, &verify.Saved{Root: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Forget("acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("Acme Devices"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(home, "state"))
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 1 || left[0] != "acme-labs@00112233445566778899aabbccddeeff.json" {
		t.Fatalf("state left %q; want only acme-labs's", left)
	}
}
