package selfupdate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/app/fetch"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

// key is an ed25519 key from a fixed seed: test-only, never a real key.
func key(t *testing.T, name string) *release.SigningKey {
	seed := sha256.Sum256([]byte("fieldflash-selfupdate-test-" + name))
	k, err := release.NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// vendor is a repository made with fieldflash-release's code that publishes builds of
// fieldflash itself.
type vendor struct {
	t    *testing.T
	repo *release.Repo
	keys map[string]*release.SigningKey
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{t: t, keys: map[string]*release.SigningKey{}}
	for _, r := range []string{"root", "targets", "snapshot", "timestamp"} {
		v.keys[r] = key(t, r)
	}
	rk := func(r string) release.RoleKeys {
		return release.RoleKeys{Keys: []*metadata.Key{v.keys[r].Public()}, Threshold: 1}
	}
	repo, err := release.Init(filepath.Join(t.TempDir(), "acme"), release.InitOptions{Name: "acme", Root: rk("root"), Targets: rk("targets"), Snapshot: rk("snapshot"), Timestamp: rk("timestamp")})
	if err != nil {
		t.Fatal(err)
	}
	v.repo = repo
	v.must(repo.Sign("root", v.keys["root"]))
	return v
}

func (v *vendor) must(err error) {
	v.t.Helper()
	if err != nil {
		v.t.Fatal(err)
	}
}

// build lists a fieldflash build for platform.
func (v *vendor) build(version string, counter uint64, platform string, data []byte) {
	file := filepath.Join(v.t.TempDir(), "fieldflash")
	v.must(os.WriteFile(file, data, 0o755))
	_, err := v.repo.AddTarget(release.NewTarget{Path: "fieldflash/fieldflash-" + version + "-" + platform, File: file, Meta: verify.TargetMeta{
		HardwareIDs: []string{platform}, Version: version, ReleaseCounter: counter, Component: Component,
		ReleaseNotes: "fieldflash " + version + ": fetches bundles online.", Advisories: []string{"ACME-SA-2026-11"}}})
	v.must(err)
}

func (v *vendor) publish() {
	v.must(v.repo.Sign("targets", v.keys["targets"]))
	v.must(v.repo.Publish(release.PublishOptions{SnapshotKeys: []*release.SigningKey{v.keys["snapshot"]}, TimestampKeys: []*release.SigningKey{v.keys["timestamp"]}}))
}

func (v *vendor) bundle() string {
	out := filepath.Join(v.t.TempDir(), "update.fwb")
	_, _, err := v.repo.BundleFile(out, nil)
	v.must(err)
	return out
}

// machine is a laptop with the vendor's root pinned and an installed fieldflash.
func machine(t *testing.T, v *vendor, current Build) (Options, string) {
	home := t.TempDir()
	root, err := os.ReadFile(filepath.Join(v.repo.Dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	// package app (its DiskState and trust store) sits above this one; verify's
	// MemoryState holds the same Saved metadata.
	roots := []verify.PinnedRoot{{Name: "acme", Root: root}}
	state := verify.NewMemoryState()
	exe := filepath.Join(t.TempDir(), "bin", "fieldflash")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	if err := os.WriteFile(exe, []byte("fieldflash "+current.Version), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{Home: home, Roots: roots, State: state, Current: current, Executable: exe}, exe
}

func read(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAnUpdateFromABundleReplacesTheExecutableAndRollbackRestoresIt(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), []byte("fieldflash 1.1.0"))
	v.build("1.1.0", 2, "windows-amd64", []byte("fieldflash 1.1.0 for windows"))
	v.publish()
	o, exe := machine(t, v, Build{Version: "1.0.0", Counter: 1})

	offer, err := FromBundle(v.bundle(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !offer.Newer || offer.Version() != "1.1.0" || !strings.Contains(offer.Target.Meta.ReleaseNotes, "fetches bundles") {
		t.Fatalf("offer %+v; want 1.1.0 with its notes, newer", offer)
	}
	if got := read(t, exe); got != "fieldflash 1.0.0" {
		t.Fatalf("finding an update changed the executable to %q", got)
	}
	done, err := Apply(offer, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, exe); got != "fieldflash 1.1.0" {
		t.Fatalf("after the update the executable is %q; want the %s build", got, Platform())
	}
	if got := read(t, done.Previous); got != "fieldflash 1.0.0" {
		t.Fatalf("kept previous build is %q; want 1.0.0", got)
	}
	if fi, _ := os.Stat(exe); fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("the new executable is not executable (%v)", fi.Mode())
	}

	back, err := Rollback(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, exe); got != "fieldflash 1.0.0" || back.To.Version != "1.0.0" {
		t.Fatalf("after the rollback the executable is %q; want 1.0.0 back", got)
	}
	// The build rolled back from is kept in turn: a second rollback undoes the first.
	if _, err := Rollback(o); err != nil || read(t, exe) != "fieldflash 1.1.0" {
		t.Fatalf("second rollback: %v, executable %q", err, read(t, exe))
	}
}

func TestOlderBuildsAreRefused(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), []byte("fieldflash 1.1.0"))
	v.publish()
	bundle := v.bundle()
	for _, current := range []Build{{Version: "1.2.0", Counter: 2}, {Version: "1.1.0", Counter: 2}, {Version: "1.0.0", Counter: 3}} {
		o, exe := machine(t, v, current)
		offer, err := FromBundle(bundle, o)
		if err != nil {
			t.Fatal(err)
		}
		if offer.Newer {
			t.Fatalf("running %+v, 1.1.0 counter 2 is offered as newer", current)
		}
		var ue *Error
		if _, err := Apply(offer, o); !errors.As(err, &ue) || !ue.Refused {
			t.Fatalf("running %+v: Apply = %v; want a refusal", current, err)
		}
		if read(t, exe) != "fieldflash "+current.Version {
			t.Fatal("a refused update changed the executable")
		}
	}
}

func TestAnUnverifiedUpdateIsRefusedAndChangesNothing(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), bytes.Repeat([]byte("new build "), 1000))
	v.publish()
	bundle := v.bundle()
	b, _ := os.ReadFile(bundle)
	i := bytes.Index(b, []byte("new build new build"))
	b[i+3] ^= 1
	tampered := filepath.Join(t.TempDir(), "tampered.fwb")
	os.WriteFile(tampered, b, 0o644)
	o, exe := machine(t, v, Build{Version: "1.0.0", Counter: 1})
	_, err := FromBundle(tampered, o)
	var ue *Error
	if !errors.As(err, &ue) || !ue.Refused || verify.CodeOf(err) != verify.CodePayload {
		t.Fatalf("err = %v; want the tampered payload refused by verify", err)
	}
	if read(t, exe) != "fieldflash 1.0.0" {
		t.Fatal("the executable changed")
	}
	// A bundle with builds for other platforms only offers nothing here.
	w := newVendor(t)
	w.build("9.0.0", 9, "plan9-mips", []byte("x"))
	w.publish()
	o2, _ := machine(t, w, Build{Version: "1.0.0"})
	if _, err := FromBundle(w.bundle(), o2); err == nil || !strings.Contains(err.Error(), "no fieldflash build for "+Platform()) {
		t.Fatalf("err = %v; want no build for this platform", err)
	}
}

func TestNoUpdateWhileAFlashIsUnfinished(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), []byte("fieldflash 1.1.0"))
	v.publish()
	o, exe := machine(t, v, Build{Version: "1.0.0", Counter: 1})
	offer, err := FromBundle(v.bundle(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The engine's journal of a flash interrupted in transfer.
	if _, err := writeJournal(o.Home, false); err != nil {
		t.Fatal(err)
	}
	_, err = Apply(offer, o)
	var ue *Error
	if !errors.As(err, &ue) || !ue.Refused || !strings.Contains(err.Error(), "not finished") {
		t.Fatalf("Apply during a flash: %v; want a refusal naming the unfinished flash", err)
	}
	if read(t, exe) != "fieldflash 1.0.0" {
		t.Fatal("the executable changed in the middle of a flash")
	}
	if _, err := writeJournal(o.Home, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(offer, o); err != nil {
		t.Fatalf("after the flash finished: %v", err)
	}
}

func TestRollbackRefusesAPreviousBuildThatChanged(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), []byte("fieldflash 1.1.0"))
	v.publish()
	o, _ := machine(t, v, Build{Version: "1.0.0", Counter: 1})
	if _, err := Rollback(o); err == nil {
		t.Fatal("rollback with no update done succeeded")
	}
	offer, _ := FromBundle(v.bundle(), o)
	done, err := Apply(offer, o)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(done.Previous, []byte("something else"), 0o755)
	var ue *Error
	if _, err := Rollback(o); !errors.As(err, &ue) || !ue.Refused {
		t.Fatalf("rollback to a changed file: %v; want a refusal", err)
	}
}

func TestCheckFindsANewerBuildOnline(t *testing.T) {
	v := newVendor(t)
	v.build("1.1.0", 2, Platform(), []byte("fieldflash 1.1.0"))
	v.publish()
	srv := httptest.NewServer(http.FileServer(http.Dir(v.repo.Dir)))
	defer srv.Close()
	o, exe := machine(t, v, Build{Version: "1.0.0", Counter: 1})
	if err := fetch.SaveRemote(o.Home, fetch.Remote{Repository: "acme", Mirrors: []string{srv.URL}}); err != nil {
		t.Fatal(err)
	}
	offer, err := Check(context.Background(), o, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !offer.Newer || offer.Version() != "1.1.0" {
		t.Fatalf("offer %+v; want 1.1.0", offer)
	}
	if _, err := Apply(offer, o); err != nil || read(t, exe) != "fieldflash 1.1.0" {
		t.Fatalf("apply: %v", err)
	}
}

// writeJournal writes a flash journal as the engine does ($FIELDFLASH_HOME/journal).
func writeJournal(home string, finished bool) (string, error) {
	e := flasher.JournalEntry{Format: 1, Key: flasher.JournalKey{Device: "acme-gw-r2/SN42", ImageSHA256: strings.Repeat("ab", 32)},
		Target: "acme-gw/app-1.1.0.bin", Step: flasher.StepTransfer, Acked: 4096, Finished: finished}
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	path := filepath.Join(home, "journal", "acme-gw-r2_SN42-0011223344556677.json")
	os.MkdirAll(filepath.Dir(path), 0o700)
	return path, os.WriteFile(path, b, 0o600)
}
