package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldflash/fieldflash/verify/release"
)

// binary is fieldflash-release built for these tests, as release engineers run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldflash-release-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fieldflash-release")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building fieldflash-release: %v\n%s", err, out)
		os.Exit(1)
	}
	// Keys the tests write themselves use a cheap KDF; the file records its count, so the
	// binary reads them the same way. keygen itself runs with the real count.
	release.KDFIterations = 2000
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testPassphrase = "test passphrase, not a secret"

// desk is one release engineer's machine: a working directory with key files.
type desk struct {
	t   *testing.T
	dir string
	env []string
}

func newDesk(t *testing.T) *desk {
	return &desk{t: t, dir: t.TempDir(), env: []string{"FIELDFLASH_PASSPHRASE=" + testPassphrase}}
}

// run runs the tool in the desk's directory and returns stdout, stderr and the exit code.
func (d *desk) run(args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = d.dir
	cmd.Env = append(append([]string{}, os.Environ()...), d.env...)
	cmd.Env = append(cmd.Env, "FIELDFLASH_REPO=") // only --repo or the working directory
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// ok runs the tool and fails the test unless it exits 0.
func (d *desk) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(args...)
	if code != 0 {
		d.t.Fatalf("fieldflash-release %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs the tool, expects exit code want and returns stderr.
func (d *desk) fails(want int, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(args...)
	if code != want {
		d.t.Fatalf("fieldflash-release %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return errOut
}

// key writes an ed25519 key pair NAME.key (encrypted) and NAME.pub into the desk's keys/.
func (d *desk) key(name string) string { return d.keyOfType(name, release.KeyEd25519) }

func (d *desk) keyOfType(name, typ string) string {
	d.t.Helper()
	priv, err := release.GenerateKey(typ)
	if err != nil {
		d.t.Fatal(err)
	}
	enc, err := release.EncodePrivateKey(priv, []byte(testPassphrase))
	if err != nil {
		d.t.Fatal(err)
	}
	pub, err := release.EncodePublicKey(priv.Public())
	if err != nil {
		d.t.Fatal(err)
	}
	base := filepath.Join(d.dir, "keys", name)
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(base+".key", enc, 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(base+".pub", pub, 0o644); err != nil {
		d.t.Fatal(err)
	}
	return base
}

func (d *desk) file(name string, data []byte) string {
	d.t.Helper()
	p := filepath.Join(d.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d *desk) status(repo string) release.Status {
	d.t.Helper()
	var st release.Status
	if err := json.Unmarshal([]byte(d.ok("status", "--repo", repo, "--json")), &st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

func (d *desk) inspect(bundle string) release.Inventory {
	d.t.Helper()
	var inv release.Inventory
	if err := json.Unmarshal([]byte(d.ok("inspect", "--json", bundle)), &inv); err != nil {
		d.t.Fatal(err)
	}
	return inv
}

// acme is a repository with one key per role except targets, which needs two of two. The
// snapshot key is ECDSA P-256, so both key types go through signing and verification.
type acme struct {
	*desk
	repo                                          string
	root, targetsA, targetsB, snapshot, timestamp string
}

func newAcme(t *testing.T) *acme {
	d := newDesk(t)
	a := &acme{desk: d, repo: filepath.Join(d.dir, "repo"),
		root: d.key("root"), targetsA: d.key("targets-alice"), targetsB: d.key("targets-bob"),
		snapshot: d.keyOfType("snapshot", release.KeyECDSAP256), timestamp: d.key("timestamp")}
	d.ok("init", "--repo", a.repo, "--name", "Acme Devices", "--root-key", a.root,
		"--targets-key", a.targetsA+","+a.targetsB, "--targets-threshold", "2",
		"--snapshot-key", a.snapshot, "--timestamp-key", a.timestamp, "--expires", "2036-01-01")
	d.ok("sign", "--repo", a.repo, "--role", "root", "--key", a.root)
	return a
}

func (a *acme) addApp(path, version, counter string, extra ...string) {
	a.t.Helper()
	file := a.file(strings.ReplaceAll(path, "/", "_"), []byte("firmware image "+path+" "+version))
	a.ok(append([]string{"add-target", "--repo", a.repo, "--file", file, "--path", path, "--hardware", "acme-gw-r2",
		"--version", version, "--counter", counter, "--component", "app"}, extra...)...)
}

func (a *acme) signTargetsAndPublish() {
	a.t.Helper()
	a.ok("sign", "--repo", a.repo, "--role", "targets", "--key", a.targetsA, "--key", a.targetsB)
	a.ok("publish", "--repo", a.repo, "--snapshot-key", a.snapshot, "--timestamp-key", a.timestamp)
}

func TestKeygenWritesAKeyOpenSSLReadsAndFingerprintNames(t *testing.T) {
	d := newDesk(t)
	var made struct {
		KeyID   string `json:"key_id"`
		Private string `json:"private"`
		Public  string `json:"public"`
	}
	if err := json.Unmarshal([]byte(d.ok("keygen", "--type", "ecdsa-p256", "--out", "keys/release-2026", "--json")), &made); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(d.dir, made.Private))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v, want mode 0600", st, err)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "pkcs8", "-in", made.Private, "-passin", "env:FIELDFLASH_PASSPHRASE")
		cmd.Dir = d.dir
		cmd.Env = append(os.Environ(), "FIELDFLASH_PASSPHRASE="+testPassphrase)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "BEGIN PRIVATE KEY") {
			t.Fatalf("openssl cannot read the key keygen wrote: %v\n%s", err, out)
		}
	} else {
		t.Log("openssl not installed: skipped reading the key with it")
	}
	fp := d.ok("fingerprint", made.Public)
	if !strings.HasPrefix(fp, made.KeyID+" ") {
		t.Fatalf("fingerprint printed %q, keygen said %s", fp, made.KeyID)
	}
	if fp2 := d.ok("fingerprint", "keys/release-2026.key"); !strings.HasPrefix(fp2, made.KeyID+" ") {
		t.Fatalf("fingerprint of the .key name: %q, of the .pub: %q", fp2, fp)
	}

	if e := d.fails(1, "keygen", "--out", "keys/release-2026"); !strings.Contains(e, "already exists") {
		t.Fatalf("keygen over an existing key: %s", e)
	}
	d.env = []string{"FIELDFLASH_PASSPHRASE="}
	if e := d.fails(1, "keygen", "--out", "keys/empty"); !strings.Contains(e, "empty") {
		t.Fatalf("empty passphrase: %s", e)
	}
	d.env = nil // no passphrase and no terminal (tests run without one)
	cmd := exec.Command(binary, "keygen", "--out", "keys/nopass")
	cmd.Dir = d.dir
	cmd.Env = withoutPassphrase()
	cmd.SysProcAttr = detachedFromTerminal()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FIELDFLASH_PASSPHRASE") {
		t.Fatalf("keygen without a passphrase: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "keys", "nopass.key")); err == nil {
		t.Fatal("a key was written without a passphrase")
	}
}

func withoutPassphrase() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FIELDFLASH_PASSPHRASE=") {
			env = append(env, e)
		}
	}
	return env
}

func TestTwoKeyHoldersSignOnSeparateMachinesThenBundle(t *testing.T) {
	a := newAcme(t)
	a.addApp("acme-gw/app-1.2.3.bin", "1.2.3+45", "7", "--protocol", "smp", "--image-slot", "0",
		"--requires", "bootloader>=1.2.0", "--notes", "Fixes the watchdog reset.", "--advisory", "ACME-SA-2026-07")

	// Alice signs on the release machine.
	a.ok("sign", "--repo", a.repo, "--role", "targets", "--key", a.targetsA)
	if e := a.fails(1, "bundle", "--repo", a.repo, "--out", "early.fwb"); !strings.Contains(e, "targets.json: signed by 1 of 2 required keys") {
		t.Fatalf("bundle with one of two targets signatures: %s", e)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "early.fwb")); err == nil {
		t.Fatal("a refused bundle left a file behind")
	}

	// Bob has his own machine: only the metadata travels there, and only targets.json back.
	bob := newDesk(t)
	bobKey := filepath.Join(bob.dir, "bob.key")
	mustCopy(t, a.targetsB+".key", bobKey)
	bobRepo := filepath.Join(bob.dir, "copy")
	if err := os.CopyFS(filepath.Join(bobRepo, "metadata"), os.DirFS(filepath.Join(a.repo, "metadata"))); err != nil {
		t.Fatal(err)
	}
	bob.ok("sign", "--repo", bobRepo, "--role", "targets", "--key", bobKey)
	handBack := filepath.Join(a.dir, "from-bob", "targets.json")
	mustCopy(t, filepath.Join(bobRepo, "metadata", "targets.json"), handBack)

	out := a.ok("merge", "--repo", a.repo, handBack)
	if !strings.Contains(out, "signature by") {
		t.Fatalf("merge output: %s", out)
	}
	st := a.status(a.repo)
	for _, rs := range st.Roles {
		if rs.Role == "targets" && (len(rs.Problems) != 0 || len(rs.Signatures[0].SignedBy) != 2) {
			t.Fatalf("targets after merge: %+v", rs)
		}
	}
	a.ok("publish", "--repo", a.repo, "--snapshot-key", a.snapshot, "--timestamp-key", a.timestamp)
	if st := a.status(a.repo); !st.Ready {
		t.Fatalf("not ready after publish: %+v", st.Roles)
	}

	a.ok("bundle", "--repo", a.repo, "--out", "acme-1.2.3.fwb")
	a.ok("bundle", "--repo", a.repo, "--out", "again.fwb")
	one, _ := os.ReadFile(filepath.Join(a.dir, "acme-1.2.3.fwb"))
	two, _ := os.ReadFile(filepath.Join(a.dir, "again.fwb"))
	if len(one) == 0 || !bytes.Equal(one, two) {
		t.Fatal("two bundles of the same repository differ")
	}

	inv := a.inspect("acme-1.2.3.fwb")
	if inv.Repository != "Acme Devices" || len(inv.Targets) != 1 || len(inv.Payloads) != 1 || !inv.Payloads[0].HashOK {
		t.Fatalf("inspect: %+v", inv)
	}
	var custom struct {
		FF struct {
			HardwareIDs    []string `json:"hardware_ids"`
			Version        string   `json:"version"`
			ReleaseCounter uint64   `json:"release_counter"`
			Protocol       struct {
				Protocols []string `json:"protocols"`
				ImageSlot *int     `json:"image_slot"`
			} `json:"protocol"`
			Requires []struct{ Component, Version string } `json:"requires"`
			Notes    string                                `json:"release_notes"`
		} `json:"fieldflash"`
	}
	if err := json.Unmarshal(inv.Targets[0].Custom, &custom); err != nil {
		t.Fatal(err)
	}
	c := custom.FF
	if c.Version != "1.2.3+45" || c.ReleaseCounter != 7 || c.HardwareIDs[0] != "acme-gw-r2" || c.Protocol.ImageSlot == nil ||
		*c.Protocol.ImageSlot != 0 || c.Requires[0].Component != "bootloader" || c.Requires[0].Version != ">=1.2.0" || c.Notes != "Fixes the watchdog reset." {
		t.Fatalf("custom.fieldflash in the bundle: %+v", c)
	}
	var signers int
	for _, r := range inv.Roles {
		if r.Role == "targets" {
			signers = len(r.Signatures)
		}
	}
	if signers != 2 {
		t.Fatalf("targets in the bundle carries %d signatures, want Alice's and Bob's", signers)
	}
	verifyBundle(t, filepath.Join(a.dir, "acme-1.2.3.fwb"), filepath.Join(a.repo, "metadata", "1.root.json"))
}

func TestMergeRefusesACopySignedBeforeAChange(t *testing.T) {
	a := newAcme(t)
	a.addApp("acme-gw/app-1.0.0.bin", "1.0.0", "1")
	a.ok("sign", "--repo", a.repo, "--role", "targets", "--key", a.targetsA)
	stale := filepath.Join(a.dir, "stale", "targets.json")
	mustCopy(t, filepath.Join(a.repo, "metadata", "targets.json"), stale)
	a.addApp("acme-gw/app-1.0.1.bin", "1.0.1", "2") // signed targets changes: v2, no signatures
	e := a.fails(1, "merge", "--repo", a.repo, stale)
	if !strings.Contains(e, "signed content differs") || !strings.Contains(e, "copy v1, here v2") {
		t.Fatalf("merge of a stale copy: %s", e)
	}
}

func TestRootRotationNeedsOldAndNewKeys(t *testing.T) {
	a := newAcme(t)
	a.addApp("acme-gw/app-1.0.0.bin", "1.0.0", "1")
	a.signTargetsAndPublish()
	newRoot1, newRoot2 := a.key("root-2027-a"), a.key("root-2027-b")

	out := a.ok("rotate-root", "--repo", a.repo, "--add-key", newRoot1, "--add-key", newRoot2, "--remove-key", a.root, "--threshold", "2")
	if !strings.Contains(out, "root v2") {
		t.Fatalf("rotate-root: %s", out)
	}
	a.ok("sign", "--repo", a.repo, "--role", "root", "--key", newRoot1, "--key", newRoot2)
	if e := a.fails(1, "bundle", "--repo", a.repo, "--out", "x.fwb"); !strings.Contains(e, "2.root.json: signed by 0 of 1 required keys of root v1") {
		t.Fatalf("bundle with a new root not signed by the old key: %s", e)
	}
	a.ok("sign", "--repo", a.repo, "--role", "root", "--key", a.root)
	// The root changed, so snapshot and timestamp must be signed by keys the new root names:
	// they are the same keys here, and publish re-checks everything.
	a.ok("publish", "--repo", a.repo, "--snapshot-key", a.snapshot, "--timestamp-key", a.timestamp)
	a.ok("bundle", "--repo", a.repo, "--out", "rotated.fwb")
	inv := a.inspect("rotated.fwb")
	var roots []int64
	for _, r := range inv.Roles {
		if r.Role == "root" {
			roots = append(roots, r.Version)
		}
	}
	if fmt.Sprint(roots) != "[1 2]" {
		t.Fatalf("root chain in the bundle: %v, want [1 2]", roots)
	}
	verifyBundle(t, filepath.Join(a.dir, "rotated.fwb"), filepath.Join(a.repo, "metadata", "1.root.json"))

	// The old root key cannot sign anything under root v2.
	a.ok("bump-expiry", "--repo", a.repo, "--role", "root", "--expires", "2036-06-01")
	if e := a.fails(1, "sign", "--repo", a.repo, "--role", "root", "--key", a.root); !strings.Contains(e, "not one of the keys of role root") {
		t.Fatalf("old root key on root v3: %s", e)
	}
}

func TestPerProductKeysSignOnlyTheirProduct(t *testing.T) {
	a := newAcme(t)
	gw1, gw2 := a.key("acme-gw-1"), a.key("acme-gw-2")
	a.ok("delegate", "--repo", a.repo, "--role", "acme-gw", "--key", gw1, "--key", gw2, "--threshold", "2", "--paths", "acme-gw/*", "--terminating",
		"--hardware", "acme-gw-r1,acme-gw-r2")
	if e := a.fails(1, "add-target", "--repo", a.repo, "--role", "acme-gw", "--file", a.file("x.bin", []byte("x")), "--path", "acme-sensor/app.bin",
		"--hardware", "acme-sensor-r1", "--version", "1.0.0", "--counter", "1", "--component", "app"); !strings.Contains(e, "only paths acme-gw/*") {
		t.Fatalf("target outside the product's paths: %s", e)
	}
	// The gateway's key cannot sign for the sensor board, even under the gateway's paths.
	if e := a.fails(1, "add-target", "--repo", a.repo, "--role", "acme-gw", "--file", a.file("x.bin", []byte("x")), "--path", "acme-gw/sensor.bin",
		"--hardware", "acme-sensor-r1", "--version", "1.0.0", "--counter", "1", "--component", "app"); !strings.Contains(e, "only hardware acme-gw-r1, acme-gw-r2, not acme-sensor-r1") {
		t.Fatalf("target for another product's hardware: %s", e)
	}
	raw, err := os.ReadFile(filepath.Join(a.repo, "metadata", "targets.json"))
	var compact bytes.Buffer
	if err != nil || json.Compact(&compact, raw) != nil || !strings.Contains(compact.String(), `"x-fieldflash-hardware-ids":["acme-gw-r1","acme-gw-r2"]`) {
		t.Fatalf("targets.json does not confine acme-gw to its hardware (%v):\n%s", err, raw)
	}
	a.addApp("acme-gw/app-2.0.0.bin", "2.0.0", "9", "--role", "acme-gw")
	a.ok("sign", "--repo", a.repo, "--role", "acme-gw", "--key", gw1+","+gw2)
	if e := a.fails(1, "sign", "--repo", a.repo, "--role", "acme-gw", "--key", a.targetsA); !strings.Contains(e, "not one of the keys of role acme-gw") {
		t.Fatalf("targets key signing the product role: %s", e)
	}
	a.signTargetsAndPublish()
	a.ok("bundle", "--repo", a.repo, "--out", "gw.fwb")
	inv := a.inspect("gw.fwb")
	if len(inv.Targets) != 1 || inv.Targets[0].Role != "acme-gw" {
		t.Fatalf("targets in the bundle: %+v", inv.Targets)
	}
	verifyBundle(t, filepath.Join(a.dir, "gw.fwb"), filepath.Join(a.repo, "metadata", "1.root.json"))

	// gw2 leaves the company: re-delegate with gw3, which also re-signs targets.
	gw3 := a.key("acme-gw-3")
	a.ok("delegate", "--repo", a.repo, "--role", "acme-gw", "--key", gw1+","+gw3, "--threshold", "2", "--paths", "acme-gw/*", "--terminating")
	if e := a.fails(1, "bundle", "--repo", a.repo, "--out", "y.fwb"); !strings.Contains(e, "targets.json: signed by 0 of 2") {
		t.Fatalf("bundle after re-delegation before signing: %s", e)
	}
	st := a.status(a.repo)
	for _, rs := range st.Roles {
		if rs.Role == "acme-gw" && (len(rs.Problems) == 0 || !strings.Contains(rs.Problems[0], "signed by 1 of 2")) {
			t.Fatalf("acme-gw still counts the signature of the revoked key: %+v", rs)
		}
	}
}

func TestWithdrawnReleaseIsNotBundledAgain(t *testing.T) {
	a := newAcme(t)
	a.addApp("acme-gw/app-1.0.0.bin", "1.0.0", "1")
	a.addApp("acme-gw/app-1.0.1.bin", "1.0.1", "2")
	a.signTargetsAndPublish()
	a.ok("bundle", "--repo", a.repo, "--out", "with-101.fwb", "--target", "acme-gw/app-1.0.1.bin")

	a.ok("withdraw", "--repo", a.repo, "--path", "acme-gw/app-1.0.1.bin")
	a.fails(1, "bundle", "--repo", a.repo, "--out", "x.fwb") // targets changed, unsigned
	a.signTargetsAndPublish()
	if e := a.fails(1, "bundle", "--repo", a.repo, "--out", "x.fwb", "--target", "acme-gw/app-1.0.1.bin"); !strings.Contains(e, "not listed") {
		t.Fatalf("bundle of a withdrawn target: %s", e)
	}
	a.ok("bundle", "--repo", a.repo, "--out", "after.fwb")
	inv := a.inspect("after.fwb")
	if len(inv.Targets) != 1 || inv.Targets[0].Path != "acme-gw/app-1.0.0.bin" {
		t.Fatalf("targets after withdraw: %+v", inv.Targets)
	}
	verifyWithdrawn(t, filepath.Join(a.dir, "after.fwb"), filepath.Join(a.dir, "with-101.fwb"), filepath.Join(a.repo, "metadata", "1.root.json"))
}

func TestCommandLineMistakesExitTwoAndHelpExitsZero(t *testing.T) {
	d := newDesk(t)
	for _, args := range [][]string{
		{},
		{"no-such-command"},
		{"init", "--name", "x"},
		{"add-target", "--path", "a.bin"},
		{"keygen", "--type", "rsa", "--out", "k"},
		{"bundle", "--bogus"},
		{"inspect"},
		{"delegate", "--role", "r", "--key", "k", "--paths", "a/*", "--expires", "soon"},
	} {
		if _, e, code := d.run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, e)
		}
	}
	for _, c := range []string{"keygen", "fingerprint", "init", "delegate", "add-target", "withdraw", "sign", "merge", "status",
		"rotate-root", "revoke-key", "bump-expiry", "snapshot", "timestamp", "publish", "bundle", "inspect"} {
		out := d.ok(c, "--help")
		if !strings.Contains(out, "usage: fieldflash-release "+c) || !strings.Contains(out, "-repo") {
			t.Errorf("%s --help:\n%s", c, out)
		}
	}
	if out := d.ok("--help"); !strings.Contains(out, "Exit codes") {
		t.Errorf("--help:\n%s", out)
	}
	if e := d.fails(1, "inspect", d.file("not-a-bundle.fwb", bytes.Repeat([]byte("x"), 1000))); !strings.Contains(e, "not-a-bundle.fwb") {
		t.Errorf("inspect of a file that is no bundle: %s", e)
	}
	if e := d.fails(1, "status", "--repo", filepath.Join(d.dir, "nothing")); !strings.Contains(e, "init") {
		t.Errorf("status outside a repository: %s", e)
	}
}

func mustCopy(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// vectors is the repository's folder of real-world vectors made with upstream tools
// (imgtool, dfuse-pack).
const vectors = "../../testdata"

func TestMCUbootAndDfuSeReleasesVerifyInTheField(t *testing.T) {
	a := newAcme(t)
	mcuboot, _ := filepath.Abs(filepath.Join(vectors, "mcuboot", "ed25519-basic.bin")) // 1.2.3+45, counter 7
	dfuse, _ := filepath.Abs(filepath.Join(vectors, "dfu", "dfuse-2elements.dfu"))     // 0483:df11, alt 0, 0x08000000
	e := a.fails(1, "add-target", "--repo", a.repo, "--file", mcuboot, "--path", "acme-gw/app-1.2.4.bin", "--hardware", "acme-gw-r2",
		"--version", "1.2.4", "--counter", "7", "--component", "app", "--format", "mcuboot")
	if !strings.Contains(e, "MCUboot header version is 1.2.3") || !strings.Contains(e, "fix --version") {
		t.Fatalf("MCUboot 1.2.3+45 added as 1.2.4: %s", e)
	}
	a.ok("add-target", "--repo", a.repo, "--file", mcuboot, "--path", "acme-gw/app-1.2.3.bin", "--hardware", "acme-gw-r2",
		"--version", "1.2.3+45", "--counter", "7", "--component", "app", "--format", "mcuboot", "--protocol", "smp", "--image-slot", "0")
	a.ok("add-target", "--repo", a.repo, "--file", dfuse, "--path", "acme-gw/boot-3.0.0.dfu", "--hardware", "acme-gw-r2",
		"--version", "3.0.0", "--counter", "3", "--component", "bootloader", "--format", "dfuse", "--protocol", "dfu",
		"--dfu-alt", "0", "--address", "0x08000000", "--usb-vendor", "0x0483", "--usb-product", "0xdf11")
	a.signTargetsAndPublish()
	a.ok("bundle", "--repo", a.repo, "--out", "images.fwb")
	v := verifyBundle(t, filepath.Join(a.dir, "images.fwb"), filepath.Join(a.repo, "metadata", "1.root.json"))
	formats := map[string]string{}
	for _, tg := range v.Targets {
		if tg.Image != nil {
			formats[tg.Path] = tg.Image.Format
		}
	}
	if formats["acme-gw/app-1.2.3.bin"] != "mcuboot" || formats["acme-gw/boot-3.0.0.dfu"] != "dfuse" {
		t.Fatalf("verify read the images as %v", formats)
	}
}

// inspect shows a bundle from anywhere: what it says is escaped for the terminal.
func TestInspectShowsHostileTextEscaped(t *testing.T) {
	for _, args := range [][]string{{"inspect", "../../verify/testdata/good_terminal_escapes.fwb"}, {"inspect", "--json", "../../verify/testdata/good_terminal_escapes.fwb"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		for _, r := range out.String() + errOut.String() {
			if r == 0x1b || r == '\r' || r == 0x07 || r == 0x9b || r == 0x202e {
				t.Fatalf("%v prints %U raw:\n%q", args, r, out.String())
			}
		}
		if !strings.Contains(out.String(), `app\x1b[2K.bin`) && !strings.Contains(out.String(), `app\u001b[2K.bin`) {
			t.Fatalf("%v does not show the path escaped:\n%s", args, out.String())
		}
	}
}

// A release build of the release tool is stamped as fieldflash is (packaging/build.sh), so
// a release engineer can say which build signed a repository.
func TestVersionNamesTheStampedBuild(t *testing.T) {
	defer func(v, c, d string) { version, commit, buildDate = v, c, d }(version, commit, buildDate)
	version, commit, buildDate = "1.4.0", "3e262fd7d7624301bc8be802fe94d8ae2756285e", "2026-12-01T23:18:27Z"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d, %s", args, code, errb.String())
		}
		for _, want := range []string{"fieldflash-release 1.4.0\n", "commit  3e262fd7d7624301bc8be802fe94d8ae2756285e", "built   2026-12-01T23:18:27Z"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: no %q in\n%s", args, want, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := run([]string{"version", "--json"}, &out, &out); code != exitOK || !strings.Contains(out.String(), `"version": "1.4.0"`) {
		t.Fatalf("version --json: exit %d: %s", code, out.String())
	}
	if code := run([]string{"version", "--bogus"}, &out, &out); code != exitUsage {
		t.Fatalf("version --bogus: exit %d, want %d", code, exitUsage)
	}
}
