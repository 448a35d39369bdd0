package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The vendor's side of these tests is the real fieldflash-release binary, run as a release
// engineer would; its repository directory is served over loopback HTTP as a mirror.

var (
	releaseOnce sync.Once
	releaseBin  string
	releaseErr  error
)

func releaseTool(t *testing.T) string {
	t.Helper()
	releaseOnce.Do(func() {
		releaseBin = filepath.Join(filepath.Dir(binary), "fieldflash-release")
		cmd := exec.Command("go", "build", "-o", releaseBin, "../cmd/fieldflash-release")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			releaseErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return releaseBin
}

// desk is a vendor's release desk: keys (test-only, passphrase in the environment) and a
// repository made and published with fieldflash-release.
type desk struct {
	t         *testing.T
	repo, key string
}

func (d *desk) run(args ...string) string {
	d.t.Helper()
	cmd := exec.Command(releaseTool(d.t), append(args, "--repo", d.repo)...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_PASSPHRASE=test-only-passphrase")
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("fieldflash-release %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	keysOnce sync.Once
	keysDir  string
)

func newDesk(t *testing.T) *desk {
	d := &desk{t: t, repo: filepath.Join(t.TempDir(), "acme")}
	// Keys are made once for all tests (each costs a passphrase derivation); every test has
	// its own repository.
	keysOnce.Do(func() {
		keysDir = filepath.Join(filepath.Dir(binary), "release-keys")
		d.key = keysDir
		for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
			d.run("keygen", "--type", "ed25519", "--out", filepath.Join(keysDir, role))
		}
	})
	d.key = keysDir
	d.run("init", "--name", "acme", "--root-key", d.k("root"), "--targets-key", d.k("targets"), "--snapshot-key", d.k("snapshot"), "--timestamp-key", d.k("timestamp"))
	d.run("sign", "--role", "root", "--key", d.k("root"))
	return d
}

func (d *desk) k(role string) string { return filepath.Join(d.key, role) }

func (d *desk) add(path, file string, flags ...string) {
	d.run(append([]string{"add-target", "--file", file, "--path", path}, flags...)...)
}

func (d *desk) publish() {
	d.run("sign", "--role", "targets", "--key", d.k("targets"))
	d.run("publish", "--snapshot-key", d.k("snapshot"), "--timestamp-key", d.k("timestamp"))
}

func writeBytes(t *testing.T, size int, seed byte) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("image-%d.bin", seed))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// technician pins the vendor's root and configures its mirror.
func technician(t *testing.T, d *desk, mirror string) string {
	home := t.TempDir()
	if r := fieldflash(t, home, "", "trust", "add", filepath.Join(d.repo, "metadata", "1.root.json"), "--yes"); r.code != exitOK {
		t.Fatalf("trust add: %d %s", r.code, r.stderr)
	}
	if mirror != "" {
		if r := fieldflash(t, home, "", "remote", "add", "acme", mirror); r.code != exitOK {
			t.Fatalf("remote add: %d %s", r.code, r.stderr)
		}
	}
	return home
}

func TestFetchThenBundleThenVerifyOnAnotherLaptop(t *testing.T) {
	d := newDesk(t)
	d.add("acme-gw/app-1.1.0.bin", writeBytes(t, 3<<20+99, 1), "--hardware", "acme-gw-r2", "--version", "1.1.0", "--counter", "2", "--component", "app",
		"--notes", "Fixes the \x1b[2Jwatchdog.")
	d.add("acme-gw/boot-2.0.0.bin", writeBytes(t, 5000, 2), "--hardware", "acme-gw-r2", "--version", "2.0.0", "--counter", "1", "--component", "bootloader")
	d.publish()
	srv := httptest.NewServer(http.FileServer(http.Dir(d.repo)))
	defer srv.Close()
	home := technician(t, d, srv.URL)

	// Metadata only: what is on offer.
	r := fieldflash(t, home, "", "fetch")
	if r.code != exitOK || !strings.Contains(r.stdout, "2 releases on offer") || !strings.Contains(r.stdout, "acme-gw-r2") {
		t.Fatalf("fetch: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = fieldflash(t, home, "", "fetch", "--hardware", "acme-gw-r2", "--json")
	if r.code != exitOK {
		t.Fatalf("fetch --hardware: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last struct {
		OK     bool `json:"ok"`
		Result struct {
			Targets []struct {
				Path       string `json:"path"`
				Downloaded int64  `json:"downloaded"`
			} `json:"targets"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || !last.OK || len(last.Result.Targets) != 2 {
		t.Fatalf("last JSON line %q (%v); want ok with 2 targets", lines[len(lines)-1], err)
	}
	progress := false
	for _, l := range lines[:len(lines)-1] {
		var ev struct {
			Kind  string `json:"kind"`
			Bytes int64  `json:"bytes"`
			Total int64  `json:"total"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Kind == "progress" && ev.Total > 0 {
			progress = true
		}
	}
	if !progress {
		t.Error("no progress events with bytes and total in the JSON lines")
	}

	srv.Close() // at the site: offline
	out := filepath.Join(t.TempDir(), "site.fwb")
	r = fieldflash(t, home, "", "bundle", "--hardware", "acme-gw-r2", "--out", out)
	if r.code != exitOK || !strings.Contains(r.stdout, "verified") {
		t.Fatalf("bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	other := technician(t, d, "")
	r = fieldflash(t, other, "", "verify", out, "--hardware", "acme-gw-r2")
	if r.code != exitOK || !strings.Contains(r.stdout, "app-1.1.0.bin") {
		t.Fatalf("verify on another laptop: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Offline, a fetch says so and keeps what is cached.
	r = fieldflash(t, home, "", "fetch", "--hardware", "acme-gw-r2")
	if r.code != exitEnv || !strings.Contains(r.stderr, "no mirror could be reached") {
		t.Fatalf("offline fetch: exit %d, %q; want 3 and the reason", r.code, r.stderr)
	}
}

func TestFetchWithoutARemoteSaysHowToConfigureOne(t *testing.T) {
	d := newDesk(t)
	home := technician(t, d, "")
	r := fieldflash(t, home, "", "fetch")
	if r.code != exitEnv || !strings.Contains(r.stderr, "fieldflash remote add") {
		t.Fatalf("exit %d, %q; want 3 and the command that configures a remote", r.code, r.stderr)
	}
	if r := fieldflash(t, home, "", "remote", "add", "acme", "ftp://x"); r.code != exitRefused {
		t.Fatalf("remote add with an ftp URL: exit %d", r.code)
	}
	if r := fieldflash(t, home, "", "bundle", "--hardware", "acme-gw-r2"); r.code != exitRefused || !strings.Contains(r.stderr, "fetch") {
		t.Fatalf("bundle before any fetch: exit %d, %q", r.code, r.stderr)
	}
}

// buildFieldflash builds the CLI stamped with a version and release counter.
func buildFieldflash(t *testing.T, dir, version, counter string) string {
	out := filepath.Join(dir, "fieldflash-"+version)
	cmd := exec.Command("go", "build", "-o", out, "-ldflags",
		"-X github.com/fieldflash/fieldflash/cli.Version="+version+" -X github.com/fieldflash/fieldflash/cli.ReleaseCounter="+counter, "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building fieldflash %s: %v\n%s", version, err, b)
	}
	return out
}

func runBuild(t *testing.T, bin, home, stdin string, args ...string) result {
	t.Helper()
	saved := binary
	binary = bin
	defer func() { binary = saved }()
	return fieldflash(t, home, stdin, args...)
}

func TestSelfUpdateFromABundleReplacesTheBinaryAndRollbackRestoresIt(t *testing.T) {
	builds := t.TempDir()
	v10 := buildFieldflash(t, builds, "1.0.0", "1")
	v11 := buildFieldflash(t, builds, "1.1.0", "2")
	platform := runtime.GOOS + "-" + runtime.GOARCH
	d := newDesk(t)
	d.add("fieldflash/fieldflash-1.1.0-"+platform, v11, "--hardware", platform, "--version", "1.1.0", "--counter", "2", "--component", "fieldflash",
		"--notes", "fieldflash 1.1.0: fetches bundles online.\n\x1b[32m✔ verified\x1b[0m")
	d.publish()
	update := filepath.Join(t.TempDir(), "update.fwb")
	d.run("bundle", "--out", update)
	home := technician(t, d, "")

	// The technician's installed fieldflash 1.0.0.
	installed := filepath.Join(t.TempDir(), "bin", "fieldflash")
	os.MkdirAll(filepath.Dir(installed), 0o755)
	b, _ := os.ReadFile(v10)
	os.WriteFile(installed, b, 0o755)

	r := runBuild(t, installed, home, "", "self-update", "--from", update, "--check")
	if r.code != exitOK || !strings.Contains(r.stdout, "fieldflash 1.1.0") || !strings.Contains(r.stdout, "fetches bundles online") {
		t.Fatalf("--check: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Release notes come from the repository: they cannot recolour the terminal.
	if strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, `\x1b[32m`) {
		t.Fatalf("release notes reached the terminal unescaped:\n%q", r.stdout)
	}
	r = runBuild(t, installed, home, "n\n", "self-update", "--from", update)
	if r.code != exitRefused || !strings.Contains(r.stderr, "not confirmed") {
		t.Fatalf("declined: exit %d %q", r.code, r.stderr)
	}
	if r := runBuild(t, installed, home, "", "version"); !strings.Contains(r.stdout, "1.0.0") {
		t.Fatalf("a declined update changed the binary: %q", r.stdout)
	}
	r = runBuild(t, installed, home, "y\n", "self-update", "--from", update)
	if r.code != exitOK || !strings.Contains(r.stdout, "updated from 1.0.0 to 1.1.0") {
		t.Fatalf("self-update: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runBuild(t, installed, home, "", "version"); !strings.Contains(r.stdout, "fieldflash 1.1.0") {
		t.Fatalf("after the update `version` says %q", r.stdout)
	}
	// The same bundle again is not a newer build.
	if r := runBuild(t, installed, home, "", "self-update", "--from", update, "--yes"); r.code != exitRefused || !strings.Contains(r.stdout, "running version") {
		t.Fatalf("re-applying: exit %d %q", r.code, r.stdout)
	}
	r = runBuild(t, installed, home, "", "self-update", "--rollback", "--yes")
	if r.code != exitOK {
		t.Fatalf("rollback: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runBuild(t, installed, home, "", "version"); !strings.Contains(r.stdout, "fieldflash 1.0.0") {
		t.Fatalf("after the rollback `version` says %q", r.stdout)
	}

	// Online: the same build found through the vendor's repository.
	srv := httptest.NewServer(http.FileServer(http.Dir(d.repo)))
	defer srv.Close()
	if r := fieldflash(t, home, "", "remote", "add", "acme", srv.URL); r.code != exitOK {
		t.Fatal(r.stderr)
	}
	r = runBuild(t, installed, home, "", "self-update", "--check")
	if r.code != exitOK || !strings.Contains(r.stdout, "a newer build") {
		t.Fatalf("online --check: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A downgrade, offered on purpose, is refused.
	if r := runBuild(t, v11, home, "", "self-update", "--from", update, "--yes"); r.code != exitRefused {
		t.Fatalf("same version from 1.1.0: exit %d", r.code)
	}
}

// drip serves the repository, sending target files slowly (64 KiB every 20 ms), so an
// interruption lands in the middle of a download.
func drip(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/targets/") {
			files.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(&slowWriter{ResponseWriter: w, ctx: r}, r)
	})
}

type slowWriter struct {
	http.ResponseWriter
	ctx *http.Request
}

func (s *slowWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), 64<<10)
		m, err := s.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		s.ResponseWriter.(http.Flusher).Flush()
		b = b[k:]
		select {
		case <-time.After(20 * time.Millisecond):
		case <-s.ctx.Context().Done():
			return n, s.ctx.Context().Err()
		}
	}
	return n, nil
}

func TestCtrlCInTheMiddleOfAFetchThenTheSameCommandResumes(t *testing.T) {
	d := newDesk(t)
	d.add("acme-gw/app-1.1.0.bin", writeBytes(t, 4<<20, 3), "--hardware", "acme-gw-r2", "--version", "1.1.0", "--counter", "2", "--component", "app")
	d.publish()
	srv := httptest.NewServer(drip(d.repo))
	defer srv.Close()
	home := technician(t, d, srv.URL)

	cmd := exec.Command(binary, "fetch", "--hardware", "acme-gw-r2", "--json")
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		var ev struct {
			Kind  string `json:"kind"`
			Bytes int64  `json:"bytes"`
		}
		json.Unmarshal(sc.Bytes(), &ev)
		if !signalled && ev.Kind == "progress" && ev.Bytes >= 1<<20 {
			cmd.Process.Signal(syscall.SIGINT)
			signalled = true
		}
	}
	cmd.Wait()
	if !signalled || cmd.ProcessState.ExitCode() != exitCanceled {
		t.Fatalf("interrupted fetch: signalled %v, exit %d; want 5", signalled, cmd.ProcessState.ExitCode())
	}
	partials, _ := filepath.Glob(filepath.Join(home, "cache", "partial", "*"))
	cached, _ := filepath.Glob(filepath.Join(home, "cache", "targets", "*"))
	if len(partials) != 1 || len(cached) != 0 {
		t.Fatalf("after Ctrl-C: partial %v, cached %v; want the download kept aside, nothing under a hash name", partials, cached)
	}
	r := fieldflash(t, home, "", "fetch", "--hardware", "acme-gw-r2")
	if r.code != exitOK || !strings.Contains(r.stdout, "resuming at") {
		t.Fatalf("second run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
