package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var binary string

// TestMain builds the real binary once: these tests run fieldflash as a technician does.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldflash-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "fieldflash")
	cmd := exec.Command("go", "build", "-o", binary, "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func fieldflash(t *testing.T, home string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

const corpus = "../verify/testdata/"

func TestTechnicianPinsARootThenVerifiesABundle(t *testing.T) {
	home := t.TempDir()
	r := fieldflash(t, home, "", "verify", corpus+"good_basic.fwb")
	if r.code != exitRefused || !strings.Contains(r.stderr, "trust store") {
		t.Fatalf("before pinning: exit %d, stderr %q; want 1 and a hint to pin the root", r.code, r.stderr)
	}
	// Declining at the prompt pins nothing.
	r = fieldflash(t, home, "n\n", "trust", "add", corpus+"root.json", "--name", "acme")
	if r.code != exitRefused || !strings.Contains(r.stdout, "threshold") {
		t.Fatalf("declined trust add: exit %d, out %q", r.code, r.stdout)
	}
	r = fieldflash(t, home, "y\n", "trust", "add", corpus+"root.json", "--name", "acme")
	if r.code != exitOK || !strings.Contains(r.stdout, "pinned \"acme\"") {
		t.Fatalf("trust add: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	r = fieldflash(t, home, "", "verify", corpus+"good_mcuboot.fwb", "--hardware", "acme-gw-r1", "--current-counter", "7")
	if r.code != exitOK {
		t.Fatalf("verify: exit %d, err %q", r.code, r.stderr)
	}
	for _, want := range []string{"verified", "repository   acme", "MCUboot 1.2.3+45", "release counter 7", "acme-gw-r1", "targets"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verdict lacks %q:\n%s", want, r.stdout)
		}
	}
	r = fieldflash(t, home, "", "verify", corpus+"good_mcuboot.fwb", "--json")
	var ok struct {
		OK       bool `json:"ok"`
		Verified struct {
			Repository string
			Targets    []struct{ Path string }
		} `json:"verified"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ok); err != nil || !ok.OK || ok.Verified.Repository != "acme" || len(ok.Verified.Targets) != 1 {
		t.Fatalf("--json: %v %+v\n%s", err, ok, r.stdout)
	}
	r = fieldflash(t, home, "", "trust", "list", "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, "\"acme\"") {
		t.Fatalf("trust list: %d %q", r.code, r.stdout)
	}
	r = fieldflash(t, home, "", "trust", "remove", "acme")
	if r.code != exitOK {
		t.Fatalf("trust remove: %d %q", r.code, r.stderr)
	}
}

func TestRefusedBundleExitsOneWithTheReasonForScripts(t *testing.T) {
	home := t.TempDir()
	fieldflash(t, home, "", "trust", "add", corpus+"root.json", "--name", "acme", "--yes")
	r := fieldflash(t, home, "", "verify", corpus+"good_basic.fwb", "--hardware", "acme-gw-r2", "--json")
	var refusal struct {
		OK   bool   `json:"ok"`
		Code string `json:"code"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &refusal); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r.stdout)
	}
	if r.code != exitRefused || refusal.OK || refusal.Code != "hardware" || refusal.Next == "" {
		t.Fatalf("exit %d, %+v; want 1, code hardware and a next step", r.code, refusal)
	}
	r = fieldflash(t, home, "", "verify", corpus+"fail_tampered_payload.fwb")
	if r.code != exitRefused || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("tampered: exit %d, %q", r.code, r.stderr)
	}
}

func TestMissingBundleIsAnEnvironmentError(t *testing.T) {
	r := fieldflash(t, t.TempDir(), "", "verify", "no-such.fwb")
	if r.code != exitEnv || !strings.Contains(r.stderr, "no-such.fwb") {
		t.Fatalf("exit %d, %q; want 3 naming the file", r.code, r.stderr)
	}
}

func TestEveryCommandHasHelpAndBadUsageExitsTwo(t *testing.T) {
	home := t.TempDir()
	for name := range commands {
		r := fieldflash(t, home, "", name, "--help")
		if r.code != exitOK || !strings.Contains(r.stdout, "Usage: fieldflash "+name) {
			t.Errorf("%s --help: exit %d, out %q", name, r.code, r.stdout)
		}
	}
	if r := fieldflash(t, home, "", "verify"); r.code != exitUsage {
		t.Errorf("verify without a bundle: exit %d", r.code)
	}
	if r := fieldflash(t, home, "", "frobnicate"); r.code != exitUsage || !strings.Contains(r.stderr, "fieldflash help") {
		t.Errorf("unknown command: exit %d %q", r.code, r.stderr)
	}
	if r := fieldflash(t, home, "", "verify", "x.fwb", "--current-counter", "minus-one"); r.code != exitUsage {
		t.Errorf("bad counter: exit %d", r.code)
	}
}

func TestDemoVerifiesTheBuiltInBundle(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	r := fieldflash(t, home, "", "demo", "--json")
	var doc struct {
		OK       bool `json:"ok"`
		Verified struct {
			Repository string
		} `json:"verified"`
		Devices []struct {
			Name     string `json:"name"`
			Before   string `json:"before"`
			After    string `json:"after"`
			Result   string `json:"result"`
			PulledAt int64  `json:"cable_pulled_at"`
			Resumed  int64  `json:"resumed_from"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != exitOK || !doc.OK || doc.Verified.Repository != "fieldflash-demo" {
		t.Fatalf("demo --json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if len(doc.Devices) != 2 {
		t.Fatalf("devices: %+v", doc.Devices)
	}
	for _, d := range doc.Devices {
		if d.Before != "1.0.0" || d.After != "1.1.0" {
			t.Errorf("%s: %s -> %s, want 1.0.0 -> 1.1.0", d.Name, d.Before, d.After)
		}
	}
	if smp := doc.Devices[0]; smp.Result != "confirmed" || smp.PulledAt == 0 || smp.Resumed < smp.PulledAt {
		t.Errorf("SMP device: %+v; want confirmed after a cable pull and a resume at or after the last acknowledged byte", smp)
	}
	if ym := doc.Devices[1]; ym.Result != "installed" {
		t.Errorf("YMODEM device: %+v", ym)
	}
	// The demo root is not trusted outside demo mode.
	r = fieldflash(t, home, "", "verify", filepath.Join(home, "demo", "demo.fwb"))
	if r.code != exitRefused {
		t.Fatalf("demo bundle outside demo mode: exit %d, want 1", r.code)
	}
}

func TestDemoFlashesBothVirtualDevicesAndResumesAfterTheCablePull(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := fieldflash(t, t.TempDir(), "", "demo")
	if r.code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	summary := r.stdout[strings.LastIndex(r.stdout, "── summary"):]
	for _, want := range []string{
		"fieldflash-sim-smp     1.0.0 -> 1.1.0  confirmed",
		"fieldflash-sim-ymodem  1.0.0 -> 1.1.0  installed",
		"cable pulled after", "resumed from byte",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	// The story on the way: verification, the pull and the retries, both results.
	for _, want := range []string{"verified", "device disconnected", "retry", "result: confirmed", "result: installed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("the demo took %s; it should stay under 40 s", d)
	}
	t.Logf("demo took %s\n%s", time.Since(start).Round(time.Second), summary)
}

// A vendor's name is kept as written, and a root in the standard TUF file name (which says
// nothing about the vendor, and collides with every other vendor's) needs --name.
func TestVendorNamesAreKeptAsWrittenAndStandardRootFilesNeedAName(t *testing.T) {
	home := t.TempDir()
	root, err := os.ReadFile(corpus + "root.json") // carries no repository name
	if err != nil {
		t.Fatal(err)
	}
	std := filepath.Join(t.TempDir(), "1.root.json")
	if err := os.WriteFile(std, root, 0o600); err != nil {
		t.Fatal(err)
	}
	r := fieldflash(t, home, "", "trust", "add", std, "--yes")
	if r.code != exitRefused || !strings.Contains(r.stderr, "--name") || !strings.Contains(r.stderr, "1.root.json") {
		t.Fatalf("a standard 1.root.json without a name: exit %d %s", r.code, r.stderr)
	}
	r = fieldflash(t, home, "", "trust", "add", std, "--name", "Python Vendor C", "--yes")
	if r.code != exitOK || !strings.Contains(r.stdout, `pinned "Python Vendor C"`) {
		t.Fatalf("trust add --name: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = fieldflash(t, home, "", "verify", corpus+"good_basic.fwb")
	if r.code != exitOK || !strings.Contains(r.stdout, "repository   Python Vendor C (root v1)") {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = fieldflash(t, home, "", "trust", "remove", "Python Vendor C"); r.code != exitOK {
		t.Fatalf("trust remove: exit %d %s", r.code, r.stderr)
	}
	if r = fieldflash(t, home, "", "verify", corpus+"good_basic.fwb"); r.code != exitRefused {
		t.Fatalf("verify after remove: exit %d", r.code)
	}
}

// noTerminalControls fails when out holds a byte or rune a terminal acts on (ESC, CR, BEL,
// C1 controls, bidirectional overrides).
func noTerminalControls(t *testing.T, what, out string) {
	t.Helper()
	for _, r := range out {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e {
			t.Fatalf("%s holds %U raw:\n%q", what, r, out)
		}
	}
}

// A hostile bundle's text (its `_type`, a target path, release notes, advisories) reaches
// the terminal escaped: it cannot erase the refusal and draw a green "verified" line.
func TestHostileBundleTextIsEscapedOnTheTerminal(t *testing.T) {
	home := t.TempDir()
	if r := fieldflash(t, home, "", "trust", "add", corpus+"root.json", "--name", "acme", "--yes"); r.code != exitOK {
		t.Fatalf("trust add: %d %s", r.code, r.stderr)
	}
	r := fieldflash(t, home, "", "verify", corpus+"fail_terminal_escapes_in_type.fwb")
	if r.code != exitRefused {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	noTerminalControls(t, "the refusal", r.stdout+r.stderr)
	if !strings.Contains(r.stderr, `timestamp\r\x1b[2K\x1b[32m✔ acme-gw-9.9.fwb verified\x1b[0m`) {
		t.Errorf("the refusal does not show the hostile _type escaped:\n%s", r.stderr)
	}

	r = fieldflash(t, home, "", "verify", corpus+"good_terminal_escapes.fwb")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	noTerminalControls(t, "the verdict", r.stdout+r.stderr)
	for _, want := range []string{`acme-gw/app\x1b[2K.bin`, `notes        Fixes the watchdog.\r\x1b[2K\x1b[32m✔ acme-gw-9.9.fwb verified\x1b[0m`,
		"\n                   Second line \\u009b31m\\u202egnp.exe", `ACME-SA-\x1b]0;owned\x07`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the verdict lacks %q:\n%s", want, r.stdout)
		}
	}
	r = fieldflash(t, home, "", "verify", corpus+"good_terminal_escapes.fwb", "--json")
	noTerminalControls(t, "the JSON verdict", r.stdout)
	var doc struct {
		Verified struct {
			Targets []struct {
				Meta struct {
					Notes string `json:"release_notes"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Verified.Targets) != 1 || !strings.Contains(doc.Verified.Targets[0].Meta.Notes, "\x1b[32m✔") {
		t.Fatalf("the JSON verdict does not carry the notes as they are (%v):\n%s", err, r.stdout)
	}
}

// trust add shows each key's id and the fingerprint of its key material, to compare with
// what the vendor publishes.
func TestTrustAddShowsKeyIDsAndFingerprints(t *testing.T) {
	r := fieldflash(t, t.TempDir(), "n\n", "trust", "add", corpus+"root.json", "--name", "acme")
	if !regexp.MustCompile(`key id       [0-9a-f]{64}  ed25519\n    fingerprint  [0-9a-f]{64}\n`).MatchString(r.stdout) {
		t.Fatalf("trust add shows no key id with its fingerprint:\n%s", r.stdout)
	}
}
