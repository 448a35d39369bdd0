package fetch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

// acmeRelease is the repository most tests fetch: for acme-gw-r2 an app too large for one
// chunk (so it is checked chunk by chunk) and a small bootloader; an older app; and a
// release for other hardware.
func acmeRelease(t testing.TB) (v *vendor, app, boot []byte) {
	v = newVendor(t)
	v.add("acme-gw/app-1.0.0.bin", payload("app-1.0.0", 1<<20+5), meta("acme-gw-r2", "app", "1.0.0", 1))
	app = v.add("acme-gw/app-1.1.0.bin", payload("app-1.1.0", 3<<20+4321), meta("acme-gw-r2", "app", "1.1.0", 2))
	boot = v.add("acme-gw/boot-2.0.0.bin", payload("boot", 4096), meta("acme-gw-r2", "bootloader", "2.0.0", 1))
	v.add("acme-sensor/app-3.0.0.bin", payload("sensor", 777), meta("acme-sensor-r1", "app", "3.0.0", 1))
	v.publish()
	return v, app, boot
}

func TestFetchBringsTheNewestReleasesForTheHardwareIntoTheCache(t *testing.T) {
	v, app, boot := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, m.URL)

	res, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Available) != 4 || len(res.Targets) != 2 {
		t.Fatalf("available %d, fetched %d; want 4 listed and the newest app and bootloader fetched", len(res.Available), len(res.Targets))
	}
	got := map[string][]byte{}
	for _, f := range res.Targets {
		b, err := os.ReadFile(f.File)
		if err != nil {
			t.Fatal(err)
		}
		got[f.Path] = b
		if filepath.Base(f.File) != f.SHA256 {
			t.Errorf("%s cached as %s; want it named by its SHA-256", f.Path, f.File)
		}
	}
	if !bytes.Equal(got["acme-gw/app-1.1.0.bin"], app) || !bytes.Equal(got["acme-gw/boot-2.0.0.bin"], boot) {
		t.Fatalf("cached %v; want app 1.1.0 and bootloader 2.0.0", keys(got))
	}
	for _, f := range res.Targets {
		if f.Path == "acme-gw/app-1.1.0.bin" && !f.Chunked {
			t.Error("the 3 MiB app was not checked chunk by chunk")
		}
	}
	// The newest metadata is now what offline verification starts from.
	saved := l.saved()
	if saved == nil || !bytes.Equal(saved.Timestamp, v.file("metadata/timestamp.json")) || !bytes.Equal(saved.Targets["targets"], v.file("metadata/targets.json")) {
		t.Fatal("the state does not hold the repository's newest timestamp and targets")
	}
	if nt, _ := l.state.NewestTime(); nt.IsZero() {
		t.Error("the newest trusted time did not advance after a fresh timestamp")
	}
	if p := l.eventsOf(EventProgress); len(p) == 0 || p[len(p)-1].Total == 0 {
		t.Error("no progress with bytes and total was reported")
	}

	// A second fetch finds everything in the cache and downloads nothing.
	res, err = Fetch(context.Background(), l.options("acme-gw-r2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Targets {
		if f.Downloaded != 0 {
			t.Errorf("%s downloaded again (%d bytes) though it was in the cache", f.Path, f.Downloaded)
		}
	}
	if res.Updated {
		t.Error("a second fetch of an unchanged repository reports it updated")
	}
}

func TestBundleFromTheCacheVerifiesOnAnotherLaptop(t *testing.T) {
	v, app, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, m.URL)
	if _, err := Fetch(context.Background(), l.options("acme-gw-r2")); err != nil {
		t.Fatal(err)
	}
	m.Close() // offline from here on
	out := filepath.Join(t.TempDir(), "site.fwb")
	b, err := Bundle(BundleOptions{Home: l.home, Roots: l.roots, State: l.state, Hardware: "acme-gw-r2", Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Targets) != 2 || b.Verified == nil {
		t.Fatalf("bundle carries %d targets; want the 2 fetched, verified", len(b.Targets))
	}
	// Another laptop, with only the vendor's root pinned and nothing learned yet.
	other := newLaptop(t, v)
	ver, err := verify.VerifyFile(out, verify.Options{Roots: other.roots, State: other.state, Hardware: "acme-gw-r2"})
	if err != nil {
		t.Fatalf("the bundle does not verify on a fresh laptop: %v", err)
	}
	found := false
	for _, tg := range ver.Targets {
		if tg.SHA256 == sha(app) {
			found = true
		}
	}
	if !found {
		t.Fatal("the verified bundle lacks the app")
	}
	// The release tool's own inspector reads it as a standard bundle.
	f, _ := os.Open(out)
	defer f.Close()
	fi, _ := f.Stat()
	inv, err := release.Inspect(f, fi.Size())
	if err != nil || inv == nil {
		t.Fatalf("fieldflash-release inspect: %v", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
