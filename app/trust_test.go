package app

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/assets"
)

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("fieldflash-test-" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// testRoot makes a root whose every role has one key; signed says whether the root key
// signs it.
func testRoot(t *testing.T, repo string, signed bool) []byte {
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

func TestTrustRefusesNamesThatCouldEscape(t *testing.T) {
	store, _ := OpenTrustStore(t.TempDir())
	if err := store.Add("../evil", testRoot(t, "", true)); err == nil {
		t.Fatal("accepted ../evil as a repository name")
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
