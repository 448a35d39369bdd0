package verify_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

// The tamper corpus: testdata/*.fwb, written by `go run ./verify/internal/tampergen -out
// verify/testdata`, one file per attack or good case (docs/bundle-format.md, section 7).
// Each row is a technician verifying that file at 2027-01-01 against the pinned test root
// (testdata/root.json), on a machine whose State was first primed with the row's prime
// bundles.

var corpusNow = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

type tamperCase struct {
	file       string
	primes     []string  // bundles verified first, on the same machine
	newestTime time.Time // State's newest trusted time before anything runs
	hardware   string    // "" means acme-gw-r1, the hardware the corpus is built for
	counter    *uint64   // the device's release counter
	installed  map[string]string
	want       verify.Code // "" means the bundle must verify
	things     []string    // the message must name one of these
	says       []string    // the message must say every one of these
	refusal    func(t *testing.T, e *verify.Error)
	check      func(t *testing.T, v *verify.Verified)
}

func u64(v uint64) *uint64 { return &v }

var tamperCases = []tamperCase{
	{file: "good_basic.fwb", counter: u64(3), check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app-1.0.0.bin", "targets")
		if v.RootVersion != 1 || v.Older {
			t.Errorf("root v%d older=%v, want root v1, not older", v.RootVersion, v.Older)
		}
	}},
	{file: "good_delegated.fwb", check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app-1.0.2.bin", "acme-gw")
	}},
	{file: "good_rotated_root.fwb", check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app-1.0.1.bin", "targets")
		if v.RootVersion != 3 {
			t.Errorf("root v%d, want v3 after two rotations", v.RootVersion)
		}
	}},
	{file: "good_mcuboot.fwb", counter: u64(7), check: func(t *testing.T, v *verify.Verified) {
		tg := onlyTarget(t, v, "acme-gw/app-mcuboot-1.2.3+45.bin", "targets")
		if tg.Image == nil || tg.Image.Format != "mcuboot" || tg.Image.Version != "1.2.3+45" {
			t.Errorf("image %+v, want the MCUboot header's 1.2.3+45", tg.Image)
		}
	}},
	{file: "good_dfuse.fwb", check: func(t *testing.T, v *verify.Verified) {
		tg := onlyTarget(t, v, "acme-gw/radio-dfuse-1.0.0.dfu", "targets")
		if tg.Image == nil || tg.Image.Format != "dfuse" || tg.Image.USBVendor != 0x0483 || tg.Image.USBProduct != 0xdf11 {
			t.Errorf("image %+v, want a DfuSe file for 0483:df11", tg.Image)
		}
	}},
	{file: "fail_untrusted_root.fwb", want: verify.CodeUntrusted, things: []string{"root"}},
	{file: "fail_bad_signature.fwb", want: verify.CodeBadSignature, things: []string{"targets"}},
	{file: "fail_threshold_not_met.fwb", want: verify.CodeThreshold, things: []string{"targets"}},
	{file: "fail_key_counted_twice.fwb", want: verify.CodeThreshold, things: []string{"targets.json"},
		says: []string{"signed by 1 of 2 required targets keys", "are the same key, which counts once", "root v2 lists 2 key ids for targets but 1 distinct key",
			"the release team must list 2 distinct targets keys"},
		refusal: sameKeyIDsNamed},
	{file: "fail_revoked_key.fwb", want: verify.CodeRevokedKey, things: []string{"targets"}},
	{file: "fail_root_version_skipped.fwb", want: verify.CodeRootSkipped, things: []string{"root"}},
	{file: "fail_expired_targets.fwb", want: verify.CodeExpired, things: []string{"targets"}},
	{file: "fail_frozen_timestamp.fwb", want: verify.CodeExpired, things: []string{"timestamp"}},
	{file: "fail_clock_backwards.fwb", newestTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), want: verify.CodeClockBackwards, things: []string{"timestamp", "clock"}},
	{file: "fail_rollback_timestamp.fwb", primes: []string{"prime_rollback_timestamp.fwb"}, want: verify.CodeWithdrawn, things: []string{"payload acme-gw/app-2.0.0.bin: "},
		says: []string{"its own metadata (targets v2) name it app 2.0.0", "the newest metadata trusted here (targets v3) no longer list acme-gw/app-2.0.0.bin",
			"withdrawn", "ask the vendor for the current release's bundle"}},
	{file: "fail_withdrawn_release.fwb", primes: []string{"prime_withdrawn_release.fwb"}, want: verify.CodeWithdrawn, things: []string{"payload acme-gw/app-1.0.0.bin: "},
		says: []string{"its own metadata (targets v1) name it app 1.0.0", "the newest metadata trusted here (targets v2) no longer list acme-gw/app-1.0.0.bin",
			"withdrawn", "ask the vendor for the current release's bundle"}},
	{file: "good_older_still_listed.fwb", primes: []string{"prime_older_still_listed.fwb"}, check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app-1.0.0.bin", "targets")
		if !v.Older {
			t.Error("Verified.Older is false for a bundle older than the newest trusted metadata")
		}
	}},
	{file: "fail_rollback_snapshot.fwb", primes: []string{"prime_rollback_snapshot.fwb"}, want: verify.CodeRollback, things: []string{"snapshot"}},
	{file: "fail_rollback_targets.fwb", primes: []string{"prime_rollback_targets.fwb"}, want: verify.CodeRollback, things: []string{"targets"}},
	{file: "fail_mix_and_match.fwb", want: verify.CodePayload, things: []string{"app-1.0.0", "targets/", "payload"},
		says: []string{"no signed target lists this hash"}},
	{file: "fail_tampered_payload.fwb", want: verify.CodePayload, things: []string{"app-1.0.0", "targets/"}},
	{file: "fail_delegation_outside_paths.fwb", want: verify.CodePayload, things: []string{"other/app.bin", "acme-gw", "targets/"},
		says: []string{"role acme-gw lists it as other/app.bin", "targets delegates only acme-gw/* to acme-gw",
			"the release team must sign it with a role delegated for other/app.bin"}},
	{file: "fail_forged_key_id.fwb", want: verify.CodeMetadata, things: []string{"targets.json"},
		says: []string{"lists a key under the id", "own id", "a key id must be computed from its key"}},
	{file: "good_hash_bins.fwb", check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app-1.bin", "bin-d5")
	}},
	{file: "fail_wrong_hash_bin.fwb", want: verify.CodePayload, things: []string{"acme-gw/app-1.bin"},
		says: []string{"role bin-1 lists it as acme-gw/app-1.bin", "targets delegates only the paths with hash prefixes 1 to bin-1"}},
	{file: "fail_delegated_other_hardware.fwb", hardware: "acme-sensor-r1", want: verify.CodePayload, things: []string{"acme-gw/app-1.0.9.bin"},
		says: []string{"role acme-gw signs it for hardware acme-sensor-r1", "targets delegates to acme-gw only hardware acme-gw-r1, acme-gw-r2"}},
	{file: "fail_too_many_signatures.fwb", want: verify.CodeTooLarge, things: []string{"timestamp.json"},
		says: []string{"carries 257 signatures; at most 256 are read"}},
	{file: "good_terminal_escapes.fwb", check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw/app\x1b[2K.bin", "targets")
	}},
	{file: "fail_terminal_escapes_in_type.fwb", want: verify.CodeFormat, things: []string{"timestamp.json"},
		says: []string{"expected metadata type timestamp"}},
	{file: "good_one_payload_two_paths.fwb", hardware: "acme-gw-r2", check: func(t *testing.T, v *verify.Verified) {
		onlyTarget(t, v, "acme-gw-r2/app-1.0.11.bin", "targets")
	}},
	{file: "fail_wrong_hardware.fwb", hardware: "acme-gw-r2", want: verify.CodeHardware, things: []string{"acme-gw-r2", "app-1.0.4"}},
	{file: "fail_lower_release_counter.fwb", counter: u64(9), want: verify.CodeReleaseCounter, things: []string{"app-1.0.5"}},
	{file: "fail_requirement.fwb", installed: map[string]string{"bootloader": "1.4.0"}, want: verify.CodeRequirement, things: []string{"bootloader"}},
	{file: "fail_mcuboot_version_mismatch.fwb", want: verify.CodeImageMismatch, things: []string{"app-mcuboot-1.2.4"}},
	{file: "fail_dfu_suffix_crc.fwb", want: verify.CodeImageFormat, things: []string{"radio-1.0.1"}},
	{file: "fail_truncated.fwb", want: verify.CodeTruncated, things: []string{"targets/"}},
	{file: "fail_trailing_garbage.fwb", want: verify.CodeTrailingGarbage, things: []string{"end-of-archive"}},
	{file: "fail_path_traversal.fwb", want: verify.CodeUnsafePath, things: []string{"metadata/../../evil.json"}},
	{file: "fail_absolute_path.fwb", want: verify.CodeUnsafePath, things: []string{"/etc/evil.json"}},
	{file: "fail_symlink.fwb", want: verify.CodeLinkEntry, things: []string{"metadata/acme-gw.json"}},
	{file: "fail_hardlink.fwb", want: verify.CodeLinkEntry, things: []string{"metadata/acme-gw.json"}},
	{file: "fail_duplicate_entry.fwb", want: verify.CodeDuplicate, things: []string{"metadata/targets.json"}},
	{file: "fail_oversized_metadata.fwb", want: verify.CodeTooLarge, things: []string{"metadata/targets.json"}},
	{file: "fail_huge_declared_size.fwb", want: verify.CodeTooLarge, things: []string{"metadata/targets.json"}},
	{file: "fail_legacy_folder_hides_payload.fwb", want: verify.CodeFormat, things: []string{"targets/"},
		says: []string{"GNU tar would read this entry differently"}},
	{file: "fail_v7_header.fwb", want: verify.CodeFormat, things: []string{"metadata/snapshot.json"},
		says: []string{"without the ustar magic"}},
	{file: "fail_no_payload.fwb", want: verify.CodeNoPayload, things: []string{"payload"}},
}

// sameKeyIDsNamed checks that the refusal of fail_key_counted_twice.fwb names two
// different key ids that its root v2 both lists for targets: the one key under two ids.
func sameKeyIDsNamed(t *testing.T, e *verify.Error) {
	t.Helper()
	m := regexp.MustCompile(`key ids ([0-9a-f]{8})… and ([0-9a-f]{8})… are the same key`).FindStringSubmatch(e.Reason)
	if m == nil || m[1] == m[2] {
		t.Fatalf("reason %q does not name two different key ids as the same key", e.Reason)
	}
	path := filepath.Join("testdata", "fail_key_counted_twice.fwb")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	md, err := bundle.NewReader(f, fi.Size(), verify.Limits{}.WithDefaults()).Metadata()
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		Signed struct {
			Roles map[string]struct {
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(md.Roots[2], &root); err != nil {
		t.Fatal(err)
	}
	ids := root.Signed.Roles["targets"].KeyIDs
	for _, short := range m[1:] {
		if !slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, short) }) {
			t.Errorf("key id %s… is not one of the targets key ids %q of root v2", short, ids)
		}
	}
}

// onlyTarget returns the single target of v after checking its path and signing role.
func onlyTarget(t *testing.T, v *verify.Verified, path, role string) verify.Target {
	t.Helper()
	if len(v.Targets) != 1 {
		t.Fatalf("%d targets, want 1", len(v.Targets))
	}
	tg := v.Targets[0]
	if tg.Path != path || tg.Role != role {
		t.Errorf("target %q signed by %q, want %q by %q", tg.Path, tg.Role, path, role)
	}
	if tg.Offset <= 0 || len(tg.SHA256) != 64 || tg.Length <= 0 || tg.Meta.Version == "" {
		t.Errorf("target %+v lacks offset, hash, length or version", tg)
	}
	return tg
}

func testRoots(t *testing.T) []verify.PinnedRoot {
	t.Helper()
	root, err := os.ReadFile(filepath.Join("testdata", "root.json"))
	if err != nil {
		t.Fatalf("pinned test root: %v (run go run ./verify/internal/tampergen -out verify/testdata)", err)
	}
	return []verify.PinnedRoot{{Name: "acme", Root: root}}
}

func TestTamperCorpusVerdicts(t *testing.T) {
	roots := testRoots(t)
	for _, c := range tamperCases {
		t.Run(strings.TrimSuffix(c.file, ".fwb"), func(t *testing.T) {
			state := verify.NewMemoryState()
			if !c.newestTime.IsZero() {
				if err := state.SaveNewestTime(c.newestTime); err != nil {
					t.Fatal(err)
				}
			}
			opts := verify.Options{
				Roots:    roots,
				State:    state,
				Now:      func() time.Time { return corpusNow },
				Hardware: "acme-gw-r1",
			}
			for _, p := range c.primes {
				if _, err := verify.VerifyFile(filepath.Join("testdata", p), opts); err != nil {
					t.Fatalf("priming with %s: %v", p, err)
				}
			}
			if c.hardware != "" {
				opts.Hardware = c.hardware
			}
			opts.CurrentCounter = c.counter
			opts.Installed = c.installed
			savedBefore, _ := state.Load(roots[0].StateKey())
			newestBefore, _ := state.NewestTime()

			v, err := verify.VerifyFile(filepath.Join("testdata", c.file), opts)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused a good bundle: %v (code %s)", err, verify.CodeOf(err))
				}
				if c.check != nil {
					c.check(t, v)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want a refusal with code %s", c.want)
			}
			if got := verify.CodeOf(err); got != c.want {
				t.Fatalf("code %q, want %q: %v", got, c.want, err)
			}
			var ve *verify.Error
			errors.As(err, &ve)
			msg := err.Error()
			if ve.Bundle != c.file || !strings.HasPrefix(msg, "bundle "+c.file+": ") {
				t.Errorf("message %q does not start by naming the bundle", msg)
			}
			named := false
			for _, thing := range c.things {
				named = named || strings.Contains(msg, thing)
			}
			if !named {
				t.Errorf("message %q names none of %q", msg, c.things)
			}
			for _, s := range c.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			if strings.TrimSpace(ve.Reason) == "" || strings.TrimSpace(ve.Next) == "" {
				t.Errorf("message %q lacks a reason or a next step (Reason %q, Next %q)", msg, ve.Reason, ve.Next)
			}
			if c.refusal != nil {
				c.refusal(t, ve)
			}
			savedAfter, _ := state.Load(roots[0].StateKey())
			newestAfter, _ := state.NewestTime()
			if !reflect.DeepEqual(savedBefore, savedAfter) || !newestBefore.Equal(newestAfter) {
				t.Error("a refused bundle changed what this machine trusts")
			}
		})
	}
}

// TestTamperCorpusHasARowForEveryFile keeps the table and testdata/ in step: a vector
// without a row would never be checked.
func TestTamperCorpusHasARowForEveryFile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.fwb"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range tamperCases {
		covered[c.file] = true
		for _, p := range c.primes {
			covered[p] = true
		}
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		onDisk[name] = true
		if !covered[name] {
			t.Errorf("%s has no row in tamperCases", name)
		}
	}
	for name := range covered {
		if !onDisk[name] {
			t.Errorf("%s is in tamperCases but not in testdata/ (run go run ./verify/internal/tampergen -out verify/testdata)", name)
		}
	}
}

// A root pinned a second time under another name has no saved state of its own; it must
// not accept what the first pin refuses as a rollback.
func TestRootPinnedTwiceStillRefusesARollback(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("testdata", "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	state := verify.NewMemoryState()
	for _, order := range [][]string{{"acme", "acme-again"}, {"acme-again", "acme"}} {
		opts := verify.Options{State: state, Now: func() time.Time { return corpusNow }}
		for _, name := range order {
			opts.Roots = append(opts.Roots, verify.PinnedRoot{Name: name, Root: root})
		}
		if order[0] == "acme" {
			// Prime through the first pin only, as a machine that pinned the root once.
			primeOpts := opts
			primeOpts.Roots = opts.Roots[:1]
			if _, err := verify.VerifyFile(filepath.Join("testdata", "prime_rollback_targets.fwb"), primeOpts); err != nil {
				t.Fatal(err)
			}
		}
		_, err := verify.VerifyFile(filepath.Join("testdata", "fail_rollback_targets.fwb"), opts)
		if verify.CodeOf(err) != verify.CodeRollback {
			t.Fatalf("pins %v: err = %v; want the rollback refused", order, err)
		}
	}
}
