package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
)

// TestMain lets this test binary play a fetch in a process of its own, so a test can kill
// it with SIGKILL in the middle of a download, as a crash or a pulled plug would.
func TestMain(m *testing.M) {
	if os.Getenv("FIELDFLASH_FETCH_HELPER") == "1" {
		os.Exit(helperFetch())
	}
	os.Exit(m.Run())
}

func helperFetch() int {
	home := os.Getenv("FIELDFLASH_HOME")
	root, err := os.ReadFile(os.Getenv("FIELDFLASH_ROOT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	roots := []verify.PinnedRoot{{Name: "acme", Root: root}}
	_, err = Fetch(context.Background(), Options{Home: home, Roots: roots, State: verify.NewMemoryState(), Hardware: []string{os.Getenv("FIELDFLASH_HARDWARE")}, Policy: testPolicy})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperEnv is the environment of a helper fetch for laptop l.
func helperEnv(t testing.TB, l *laptop) []string {
	root := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(root, l.roots[0].Root, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "FIELDFLASH_FETCH_HELPER=1", "FIELDFLASH_HOME="+l.home, "FIELDFLASH_ROOT="+root, "FIELDFLASH_HARDWARE=acme-gw-r2")
}

// checkCacheHoldsOnlyVerified fails when any file under a hash name does not hash to it.
func checkCacheHoldsOnlyVerified(t *testing.T, home string) int {
	t.Helper()
	dir := filepath.Join(home, "cache", "targets")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // renamed in just now, or gone
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Fatalf("the cache holds %s under a hash name whose bytes hash to %s", e.Name(), got)
		}
	}
	return len(entries)
}

func TestAKill9MidDownloadResumesOnTheNextRunAndNeverLeavesAnUnverifiedFile(t *testing.T) {
	v, app, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	m.setFault((&faulty{path: appPath, data: app, drip: time.Millisecond}).handler()) // about 1 MB/s
	l := newLaptop(t, v, m.URL)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = helperEnv(t, l)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(l.home, "cache", "partial", sha(app))
	deadline := time.Now().Add(60 * time.Second)
	for {
		checkCacheHoldsOnlyVerified(t, l.home)
		if fi, err := os.Stat(partial); err == nil && fi.Size() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the download never got past 1 MiB: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()
	fi, err := os.Stat(partial)
	if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(app)) {
		t.Fatalf("after the kill the partial download is %v (%v); want part of the app kept", fi, err)
	}
	if _, err := os.Stat(filepath.Join(l.home, "cache", "targets", sha(app))); err == nil {
		t.Fatal("the app is under its hash name though its download was killed")
	}
	checkCacheHoldsOnlyVerified(t, l.home)

	m.setFault(nil)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	reqs := m.requests(appPath)
	last := reqs[len(reqs)-1]
	if !strings.Contains(last, "bytes=") || strings.HasSuffix(last, "bytes=0-") {
		t.Fatalf("the rerun asked %q; want a Range request resuming the killed download", last)
	}
	if n := checkCacheHoldsOnlyVerified(t, l.home); n != 2 {
		t.Fatalf("%d files in the cache; want the app and the bootloader", n)
	}
}
