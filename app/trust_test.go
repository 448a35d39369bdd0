package app

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/verify"
)

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("fieldflash-test-" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// testRoot makes a root whose every role has one key; signed says whether the root key
// signs it.
func testRoot(t testing.TB, repo string, signed bool) []byte {
	t.Helper()
	root := metadata.Root(time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	if repo != "" {
		root.Signed.UnrecognizedFields = map[string]any{RepositoryField: repo}
	}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		k, err := metadata.KeyFromPublicKey(testKey(role).Public())
		if err != nil {
			t.Fatal(err)
		}
		root.Signed.AddKey(k, role)
	}
	if signed {
		s, _ := signature.LoadSigner(testKey("root"), crypto.Hash(0))
		if _, err := root.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	data, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTrustAddShowsKeysAndPinsTheRoot(t *testing.T) {
	store, err := OpenTrustStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := testRoot(t, "acme", true)
	sum, err := InspectRoot(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Name != "acme" || sum.Version != 1 || len(sum.Roles) != 4 || len(sum.Keys) != 4 {
		t.Fatalf("summary %+v", sum)
	}
	if err := store.Add(sum.Name, data); err != nil {
		t.Fatal(err)
	}
	roots, err := store.Roots()
	if err != nil || len(roots) != 1 || roots[0].Name != "acme" {
		t.Fatalf("roots %v, %v", roots, err)
	}
	if err := store.Add("acme", data); err == nil || !strings.Contains(err.Error(), "trust remove") {
		t.Fatalf("adding twice: %v; want a refusal that says how to replace", err)
	}
	if err := store.Remove("acme"); err != nil {
		t.Fatal(err)
	}
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("after remove: %v", list)
	}
	if err := store.Remove("acme"); err == nil || !strings.Contains(err.Error(), "trust list") {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestTrustRefusesARootThatIsNotSelfSigned(t *testing.T) {
	_, err := InspectRoot(testRoot(t, "acme", false), "")
	if err == nil || !strings.Contains(err.Error(), "self-signed") {
		t.Fatalf("err = %v; want refusal of an unsigned root", err)
	}
	if _, err := InspectRoot([]byte("{}"), "x"); err == nil {
		t.Fatal("accepted {} as a root")
	}
}

// A name is kept as written, but never becomes a path: "../evil" is stored encoded inside
// the trust store and reads back as itself.
func TestTrustNamesThatLookLikePathsStayInsideTheStore(t *testing.T) {
	home := t.TempDir()
	store, _ := OpenTrustStore(home)
	if err := store.Add("../evil", testRoot(t, "", true)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(home, "trust"))
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "x-") {
		t.Fatalf("trust store holds %v; want one encoded file", entries)
	}
	if _, err := os.Stat(filepath.Join(home, "evil.root.json")); err == nil {
		t.Fatal("a repository name escaped the trust store")
	}
	if roots, _ := store.Roots(); len(roots) != 1 || roots[0].Name != "../evil" {
		t.Fatalf("roots %+v", roots)
	}
	if err := store.Remove("../evil"); err != nil {
		t.Fatal(err)
	}
}

func TestTrustRefusesTheSameRootUnderASecondName(t *testing.T) {
	store, _ := OpenTrustStore(t.TempDir())
	data := testRoot(t, "acme", true)
	if err := store.Add("acme", data); err != nil {
		t.Fatal(err)
	}
	err := store.Add("acme-again", data)
	if err == nil || !strings.Contains(err.Error(), `"acme"`) {
		t.Fatalf("second pin of the same root: %v; want a refusal naming the first", err)
	}
}

func TestTrustRefusesToPinTheDemoRoot(t *testing.T) {
	store, _ := OpenTrustStore(t.TempDir())
	err := store.Add("fieldflash-demo", assets.DemoRoot)
	if err == nil || !strings.Contains(err.Error(), "demo mode") {
		t.Fatalf("pinning the demo root: %v; want a refusal", err)
	}
	if roots, _ := store.Roots(); len(roots) != 0 {
		t.Fatalf("demo root pinned anyway: %v", roots)
	}
}

// rootOf makes a self-signed root: rootKey is listed under rootID (its own id when ""), for
// the root role, with the test keys for the other roles, and rootSigner signs it with the
// signature naming rootID.
func rootOf(t *testing.T, rootKey *metadata.Key, rootID string, rootSigner ed25519.PrivateKey) []byte {
	t.Helper()
	root := metadata.Root(time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	if rootID == "" {
		var err error
		if rootID, err = verify.KeyID(rootKey); err != nil {
			t.Fatal(err)
		}
	}
	root.Signed.Keys[rootID] = rootKey
	root.Signed.Roles["root"].KeyIDs = []string{rootID}
	for _, role := range []string{"targets", "snapshot", "timestamp"} {
		k, _ := metadata.KeyFromPublicKey(testKey(role).Public())
		root.Signed.AddKey(k, role)
	}
	s, _ := signature.LoadSigner(rootSigner, crypto.Hash(0))
	if _, err := root.Sign(s); err != nil {
		t.Fatal(err)
	}
	root.Signatures[0].KeyID = rootID
	data, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// aliasOf is priv's public key with one extra field: the same key material under another
// key id, which the TUF spec allows.
func aliasOf(t *testing.T, priv ed25519.PrivateKey) *metadata.Key {
	t.Helper()
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	k.UnrecognizedFields = map[string]any{"x-note": "the same key under a second id"}
	return k
}

// An attacker's root that lists the attacker's key under the vendor's published key id is
// refused: the id is not the key's, so the id shown would lie about who signs.
func TestTrustRefusesAKeyListedUnderAnotherKeysID(t *testing.T) {
	vendor, _ := metadata.KeyFromPublicKey(testKey("root").Public())
	vendorID, _ := vendor.ID()
	mallory := testKey("mallory")
	malloryKey, _ := metadata.KeyFromPublicKey(mallory.Public())
	forged := rootOf(t, malloryKey, vendorID, mallory)
	sum, err := InspectRoot(forged, "acme")
	if err == nil || !strings.Contains(err.Error(), "own id") {
		t.Fatalf("a root naming mallory's key by the vendor's id %s: %+v, %v; want a refusal", short(vendorID), sum, err)
	}
	store, _ := OpenTrustStore(t.TempDir())
	if err := store.Add("acme", forged); err == nil {
		t.Fatal("pinned a root whose key id is not its key's")
	}
}

// trust add shows, beside each key id, the fingerprint of the key material: the SHA-256 of
// its DER SubjectPublicKeyInfo, as openssl prints it.
func TestTrustShowsTheFingerprintOfEachKey(t *testing.T) {
	sum, err := InspectRoot(testRoot(t, "acme", true), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sum.Keys {
		var priv ed25519.PrivateKey
		for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
			if tk, _ := metadata.KeyFromPublicKey(testKey(role).Public()); mustID(t, tk) == k.ID {
				priv = testKey(role)
			}
		}
		der, _ := x509.MarshalPKIXPublicKey(priv.Public())
		if want := sha256.Sum256(der); k.Fingerprint != hex.EncodeToString(want[:]) {
			t.Errorf("key %s: fingerprint %q, want %x", k.ID, k.Fingerprint, want)
		}
	}
}

func mustID(t *testing.T, k *metadata.Key) string {
	id, err := verify.KeyID(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The demo keys are public: a root that holds one, under whatever id, is refused.
func TestTrustRefusesTheDemoKeysUnderAnotherID(t *testing.T) {
	seed := sha256.Sum256([]byte("fieldflash-demo-only-key-root")) // assets/internal/demogen
	demo := ed25519.NewKeyFromSeed(seed[:])
	root := rootOf(t, aliasOf(t, demo), "", demo)
	store, _ := OpenTrustStore(t.TempDir())
	err := store.Add("not-the-demo", root)
	if err == nil || !strings.Contains(err.Error(), "demo") {
		t.Fatalf("pinning the demo root key under a second id: %v; want a refusal", err)
	}
}

// The same repository's root key under a second id is the same repository.
func TestTrustRefusesTheSameRootKeyUnderAnotherID(t *testing.T) {
	store, _ := OpenTrustStore(t.TempDir())
	if err := store.Add("acme", testRoot(t, "acme", true)); err != nil {
		t.Fatal(err)
	}
	err := store.Add("acme-again", rootOf(t, aliasOf(t, testKey("root")), "", testKey("root")))
	if err == nil || !strings.Contains(err.Error(), `"acme"`) {
		t.Fatalf("the pinned root key under a second id: %v; want a refusal naming acme", err)
	}
}

// The name a root carries is pinned as written, spaces and all, and a name that could not
// be shown safely is refused.
func TestRepositoryNamesAreKeptAsTheVendorWroteThem(t *testing.T) {
	home := t.TempDir()
	store, _ := OpenTrustStore(home)
	data := testRoot(t, "Python Vendor C", true)
	sum, err := InspectRoot(data, "")
	if err != nil || sum.Name != "Python Vendor C" {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if err := store.Add(sum.Name, data); err != nil {
		t.Fatal(err)
	}
	if roots, _ := store.Roots(); len(roots) != 1 || roots[0].Name != "Python Vendor C" {
		t.Fatalf("roots %+v", roots)
	}
	if err := store.Remove("Python Vendor C"); err != nil {
		t.Fatal(err)
	}
	if err := store.Add("Acme\x1b[2J", data); err == nil || !strings.Contains(err.Error(), `Acme\\x1b[2J`) {
		t.Fatalf("a name with an escape: %v", err)
	}
	for _, f := range []string{"root.json", "1.root.json", "12.root.json"} {
		if _, err := NameFromFile("/tmp/" + f); err == nil || !strings.Contains(err.Error(), "--name") {
			t.Errorf("%s: %v; want --name asked for", f, err)
		}
	}
	if n, err := NameFromFile("/tmp/acme.root.json"); err != nil || n != "acme" {
		t.Errorf("acme.root.json: %q, %v", n, err)
	}
}
