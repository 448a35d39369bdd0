//go:build cgo

package ui

import (
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

// vendorWithBuild is a repository made with fieldflash-release's code that lists a build
// of fieldflash 1.1.0 for this platform, served on loopback. Its keys are test-only.
func vendorWithBuild(t *testing.T, build []byte) (repo string, root []byte) {
	key := func(name string) *release.SigningKey {
		seed := sha256.Sum256([]byte("fieldflash-ui-test-" + name))
		k, err := release.NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := key("all")
	rk := release.RoleKeys{Keys: []*metadata.Key{k.Public()}, Threshold: 1}
	r, err := release.Init(filepath.Join(t.TempDir(), "acme"), release.InitOptions{Name: "acme", Root: rk, Targets: rk, Snapshot: rk, Timestamp: rk})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Sign("root", k))
	file := filepath.Join(t.TempDir(), "fieldflash")
	must(os.WriteFile(file, build, 0o755))
	_, err = r.AddTarget(release.NewTarget{Path: "fieldflash/fieldflash-1.1.0-" + app.Platform(), File: file, Meta: verify.TargetMeta{
		HardwareIDs: []string{app.Platform()}, Version: "1.1.0", ReleaseCounter: 2, Component: "fieldflash",
		ReleaseNotes: "Fetches bundles while online.", Advisories: []string{"ACME-SA-2026-11"}}})
	must(err)
	must(r.Sign("targets", k))
	must(r.Publish(release.PublishOptions{SnapshotKeys: []*release.SigningKey{k}, TimestampKeys: []*release.SigningKey{k}}))
	root, err = os.ReadFile(filepath.Join(r.Dir, "metadata", "1.root.json"))
	must(err)
	return r.Dir, root
}

func TestTheBannerOffersANewerFieldflashAndInstallsItWhenAsked(t *testing.T) {
	newBuild := []byte("fieldflash 1.1.0 for " + app.Platform())
	repo, root := vendorWithBuild(t, newBuild)
	srv := httptest.NewServer(http.FileServer(http.Dir(repo)))
	defer srv.Close()

	// A laptop that pins the vendor's root and knows its mirror, running fieldflash 1.0.0.
	home := t.TempDir()
	t.Setenv(app.HomeEnv, home)
	store, err := app.OpenTrustStore(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("acme", root); err != nil {
		t.Fatal(err)
	}
	s, _ := app.OpenSession(false)
	if err := s.SaveRemote(app.Remote{Repository: "acme", Mirrors: []string{srv.URL}}); err != nil {
		t.Fatal(err)
	}
	saved := app.RunningBuild()
	app.SetBuild(app.Build{Version: "1.0.0", Counter: 1})
	defer app.SetBuild(saved)
	exe := filepath.Join(t.TempDir(), "fieldflash")
	os.WriteFile(exe, []byte("fieldflash 1.0.0"), 0o755)

	a := test.NewApp()
	defer a.Quit()
	h := &harness{t: t, q: &uiQueue{}}
	st, err := NewState(Options{Do: h.q.post, WatchEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Session.Executable = exe // the file to replace: not this test binary
	h.st = st
	h.w = a.NewWindow("fieldflash")
	h.sh = NewShell(h.w, st)
	h.w.Resize(fyne.NewSize(1366, 768))

	h.waitText("fieldflash 1.1.0 is available (this is 1.0.0).")
	if got, _ := os.ReadFile(exe); string(got) != "fieldflash 1.0.0" {
		t.Fatal("the banner installed something before it was asked")
	}
	h.tap("Update fieldflash…")
	h.waitText("Fetches bundles while online.")
	h.tap("Install now")
	h.waitText("fieldflash 1.1.0 is installed: restart fieldflash to use it.")
	if got, _ := os.ReadFile(exe); string(got) != string(newBuild) {
		t.Fatalf("the executable holds %q; want the verified 1.1.0 build", got)
	}
	if got, _ := os.ReadFile(exe + ".previous"); string(got) != "fieldflash 1.0.0" {
		t.Fatalf("the previous build kept is %q", got)
	}
}
