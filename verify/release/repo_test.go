package release

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// t0 is the release desk's clock in these tests.
var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// testKey is an ed25519 key from a fixed seed: test-only, never a real key.
func testKey(t testing.TB, name string) *SigningKey {
	t.Helper()
	seed := sha256.Sum256([]byte("fieldflash-release-test-" + name))
	k, err := NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubs(keys ...*SigningKey) []*metadata.Key {
	var out []*metadata.Key
	for _, k := range keys {
		out = append(out, k.Public())
	}
	return out
}

type fixture struct {
	*Repo
	t                                  testing.TB
	root, targets, snapshot, timestamp *SigningKey
	clock                              time.Time
}

// newFixture makes a repository with one key per role, root v1 signed.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, root: testKey(t, "root"), targets: testKey(t, "targets"), snapshot: testKey(t, "snapshot"), timestamp: testKey(t, "timestamp"), clock: t0}
	r, err := Init(filepath.Join(t.TempDir(), "repo"), InitOptions{
		Name:      "Acme Devices",
		Root:      RoleKeys{pubs(f.root), 1},
		Targets:   RoleKeys{pubs(f.targets), 1},
		Snapshot:  RoleKeys{pubs(f.snapshot), 1},
		Timestamp: RoleKeys{pubs(f.timestamp), 1},
		Now:       func() time.Time { return f.clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Repo = r
	f.must(r.Sign("root", f.root))
	return f
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) payload(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(filepath.Dir(f.Dir), name)
	f.must(os.WriteFile(p, data, 0o644))
	return p
}

func appMeta(version string, counter uint64) verify.TargetMeta {
	return verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: version, ReleaseCounter: counter, Component: "app"}
}

func (f *fixture) addApp(path, version string, counter uint64, role string) {
	f.t.Helper()
	_, err := f.AddTarget(NewTarget{Path: path, File: f.payload(strings.ReplaceAll(path, "/", "_"), []byte("image "+path+" "+version)), Role: role, Meta: appMeta(version, counter)})
	f.must(err)
}

func (f *fixture) publish() {
	f.t.Helper()
	f.must(f.Publish(PublishOptions{SnapshotKeys: []*SigningKey{f.snapshot}, TimestampKeys: []*SigningKey{f.timestamp}}))
}

func (f *fixture) bundle(paths ...string) []byte {
	f.t.Helper()
	var b bytes.Buffer
	f.must(f.Bundle(&b, paths))
	return b.Bytes()
}

func (f *fixture) version(role string) int64 {
	f.t.Helper()
	m, err := f.load(role)
	f.must(err)
	v, _ := m.versionExpires()
	return v
}

func (f *fixture) problems(role string) []string {
	f.t.Helper()
	st, err := f.Status()
	f.must(err)
	for _, rs := range st.Roles {
		if rs.Role == role && (role != "root" || rs.Version == f.version("root")) {
			return rs.Problems
		}
	}
	f.t.Fatalf("status has no role %s", role)
	return nil
}

func TestRepositoryIsReadyOnlyWhenEveryRoleIsSignedAndPublished(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	var b bytes.Buffer
	err := f.Bundle(&b, nil)
	if err == nil || !strings.Contains(err.Error(), "targets.json: signed by 0 of 1 required keys") {
		t.Fatalf("unsigned targets bundled or wrong reason: %v", err)
	}
	if err := f.Publish(PublishOptions{SnapshotKeys: []*SigningKey{f.snapshot}, TimestampKeys: []*SigningKey{f.timestamp}}); err == nil {
		t.Fatal("published with unsigned targets")
	}
	f.must(f.Sign("targets", f.targets))
	if err := f.Bundle(&b, nil); err == nil || !strings.Contains(err.Error(), "snapshot.json: not made yet") {
		t.Fatalf("bundled without snapshot or wrong reason: %v", err)
	}
	f.publish()
	st, err := f.Status()
	f.must(err)
	if !st.Ready || st.Repository != "Acme Devices" {
		t.Fatalf("status after publish: ready %v repository %q: %+v", st.Ready, st.Repository, st.Roles)
	}
	if len(f.bundle()) == 0 {
		t.Fatal("empty bundle")
	}
}

func TestChangingSignedMetadataBumpsItsVersionAndClearsSignatures(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.addApp("acme-gw/app-1.0.1.bin", "1.0.1", 2, "")
	if v := f.version("targets"); v != 1 {
		t.Fatalf("edits before the first signature moved targets to v%d; want v1 (no holes)", v)
	}
	f.must(f.Sign("targets", f.targets))
	f.publish()
	snapV, tsV := f.version("snapshot"), f.version("timestamp")

	f.addApp("acme-gw/app-1.1.0.bin", "1.1.0", 3, "")
	m, err := f.load("targets")
	f.must(err)
	if m.Targets.Signed.Version != 2 || len(m.Targets.Signatures) != 0 {
		t.Fatalf("after a change to signed targets: v%d with %d signatures; want v2 with none", m.Targets.Signed.Version, len(m.Targets.Signatures))
	}
	if p := f.problems("snapshot"); len(p) == 0 || !strings.Contains(p[0], "lists targets.json v1, the file is v2") {
		t.Fatalf("stale snapshot not reported: %v", p)
	}
	f.must(f.Sign("targets", f.targets))
	f.publish()
	if f.version("snapshot") != snapV+1 || f.version("timestamp") != tsV+1 {
		t.Fatalf("publish after a new targets: snapshot v%d timestamp v%d, want v%d v%d", f.version("snapshot"), f.version("timestamp"), snapV+1, tsV+1)
	}
	// Publishing again with nothing changed leaves every file as it is.
	before := f.bundle()
	f.publish()
	if !bytes.Equal(before, f.bundle()) {
		t.Fatal("a publish with nothing changed changed the bundle")
	}
}

func TestSameRepositoryGivesByteIdenticalBundles(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.addApp("acme-gw/radio-2.0.0.bin", "2.0.0", 1, "")
	f.must(f.Sign("targets", f.targets))
	f.publish()
	a, b := f.bundle(), f.bundle()
	if !bytes.Equal(a, b) {
		t.Fatal("two bundles of the same repository differ")
	}
	// A copy of the repository elsewhere (another machine, another path) gives the same bytes.
	copyDir := filepath.Join(t.TempDir(), "elsewhere")
	f.must(os.CopyFS(copyDir, os.DirFS(f.Dir)))
	other := &Repo{Dir: copyDir, Now: f.Now}
	var c bytes.Buffer
	f.must(other.Bundle(&c, nil))
	if !bytes.Equal(a, c.Bytes()) {
		t.Fatal("the same repository in another directory gives another bundle")
	}
	one := f.bundle("acme-gw/app-1.0.0.bin")
	if bytes.Equal(one, a) || len(one) >= len(a) {
		t.Fatal("a bundle of one target is not smaller than a bundle of both")
	}
}

func TestBundleRefusedOnceARoleExpired(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.must(f.Sign("targets", f.targets))
	f.publish()
	f.clock = t0.Add(DefaultTimestampExpiry + time.Hour)
	var b bytes.Buffer
	err := f.Bundle(&b, nil)
	if err == nil || !strings.Contains(err.Error(), "timestamp.json: expired") || !strings.Contains(err.Error(), "bump-expiry") {
		t.Fatalf("expired timestamp bundled or message without next step: %v", err)
	}
	f.must(f.BumpExpiry("timestamp", f.clock.Add(7*24*time.Hour)))
	f.must(f.Sign("timestamp", f.timestamp))
	f.bundle()
}

func TestMergeTakesSignaturesOnlyForTheSameSignedContent(t *testing.T) {
	f := newFixture(t)
	second := testKey(t, "targets-2")
	_, err := f.ChangeRoot(RootChange{Role: "targets", Add: pubs(second), Threshold: 2})
	f.must(err)
	f.must(f.Sign("root", f.root))
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")

	// The second key holder works on a copy of metadata/ on their own machine.
	elsewhere := filepath.Join(t.TempDir(), "holder-b")
	f.must(os.CopyFS(filepath.Join(elsewhere, MetadataDir), os.DirFS(filepath.Join(f.Dir, MetadataDir))))
	holderB := &Repo{Dir: elsewhere, Now: f.Now}
	f.must(holderB.Sign("targets", second))
	f.must(f.Sign("targets", f.targets))
	theirs, err := holderB.RoleFile("targets")
	f.must(err)

	added, err := f.Merge("targets", theirs)
	f.must(err)
	if len(added) != 1 || added[0] != second.ID() {
		t.Fatalf("merge added %v, want the second holder's key", added)
	}
	if p := f.problems("targets"); len(p) != 0 {
		t.Fatalf("targets after merge: %v", p)
	}
	if again, err := f.Merge("targets", theirs); err != nil || len(again) != 0 {
		t.Fatalf("merging the same copy twice: %v %v", again, err)
	}

	// A copy signed before a change must not lend its signature to the changed content.
	f.addApp("acme-gw/app-1.0.1.bin", "1.0.1", 2, "")
	if _, err := f.Merge("targets", theirs); err == nil || !strings.Contains(err.Error(), "signed content differs") {
		t.Fatalf("merge of an outdated copy: %v", err)
	}

	// A forged signature is refused, not merged.
	forged := testKey(t, "mallory")
	var doc map[string]any
	data, _ := f.RoleFile("targets")
	f.must(json.Unmarshal(data, &doc))
	doc["signatures"] = []map[string]string{{"keyid": second.ID(), "sig": strings.Repeat("ab", 64)}}
	bad, _ := json.Marshal(doc)
	if _, err := f.Merge("targets", bad); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("bad signature merged: %v", err)
	}
	doc["signatures"] = []map[string]string{{"keyid": forged.ID(), "sig": strings.Repeat("ab", 64)}}
	bad, _ = json.Marshal(doc)
	if _, err := f.Merge("targets", bad); err == nil || !strings.Contains(err.Error(), "not a key of role targets") {
		t.Fatalf("signature by a stranger merged: %v", err)
	}
}

func TestSignRefusesAKeyThatCannotCount(t *testing.T) {
	f := newFixture(t)
	err := f.Sign("targets", f.snapshot)
	if err == nil || !strings.Contains(err.Error(), "is not one of the keys of role targets") {
		t.Fatalf("snapshot key signed targets: %v", err)
	}
}

func TestRootRotationNeedsOldAndNewThresholds(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.must(f.Sign("targets", f.targets))
	f.publish()

	newRoot := testKey(t, "root-2")
	v, err := f.ChangeRoot(RootChange{Add: pubs(newRoot), Remove: []string{f.root.ID()}})
	f.must(err)
	if v != 2 {
		t.Fatalf("rotation made root v%d, want 2", v)
	}
	f.must(f.Sign("root", newRoot))
	var b bytes.Buffer
	err = f.Bundle(&b, nil)
	if err == nil || !strings.Contains(err.Error(), "2.root.json: signed by 0 of 1 required keys of root v1") {
		t.Fatalf("root v2 signed by the new key only was bundled, or wrong reason: %v", err)
	}
	f.must(f.Sign("root", f.root)) // the old key may sign the new root, though v2 dropped it
	f.bundle()

	// The old key no longer counts for v3.
	_, err = f.ChangeRoot(RootChange{Expires: t0.Add(1000 * 24 * time.Hour)})
	f.must(err)
	if err := f.Sign("root", f.root); err == nil {
		t.Fatal("a key revoked in root v2 signed root v3")
	}
	if _, err := os.Stat(filepath.Join(f.Dir, MetadataDir, "3.root.json")); err != nil {
		t.Fatal(err)
	}
}

func TestDelegatedRoleSignsOnlyItsPaths(t *testing.T) {
	f := newFixture(t)
	gw1, gw2 := testKey(t, "gw-1"), testKey(t, "gw-2")
	f.must(f.Delegate(Delegation{Name: "acme-gw", RoleKeys: RoleKeys{pubs(gw1, gw2), 2}, Paths: []string{"acme-gw/*"}, Terminating: true}))
	_, err := f.AddTarget(NewTarget{Path: "other/app.bin", File: f.payload("x", []byte("x")), Role: "acme-gw", Meta: appMeta("1.0.0", 1)})
	if err == nil || !strings.Contains(err.Error(), "only paths acme-gw/*") {
		t.Fatalf("path outside the delegation accepted: %v", err)
	}
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "acme-gw")
	f.must(f.Sign("targets", f.targets))
	f.must(f.Sign("acme-gw", gw1))
	if p := f.problems("acme-gw"); len(p) == 0 || !strings.Contains(p[0], "signed by 1 of 2 required keys of targets") {
		t.Fatalf("acme-gw with one of two signatures: %v", p)
	}
	f.must(f.Sign("acme-gw", gw2))
	f.publish()
	inv, err := Inspect(bytes.NewReader(f.bundle()), int64(len(f.bundle())))
	f.must(err)
	if len(inv.Targets) != 1 || inv.Targets[0].Role != "acme-gw" || !inv.Targets[0].Carried {
		t.Fatalf("inspect: %+v", inv.Targets)
	}

	// Revoking gw2 under threshold 2 would leave the role unable to sign: refused.
	if err := f.RevokeKey("acme-gw", gw2.ID()); err == nil {
		t.Fatal("revocation leaving fewer keys than the threshold accepted")
	}
	gw3 := testKey(t, "gw-3")
	f.must(f.Delegate(Delegation{Name: "acme-gw", RoleKeys: RoleKeys{pubs(gw1, gw3), 2}, Paths: []string{"acme-gw/*"}, Terminating: true}))
	tm, err := f.loadTargets("targets")
	f.must(err)
	if _, ok := tm.Signed.Delegations.Keys[gw2.ID()]; ok {
		t.Fatal("the replaced key is still listed in targets' delegations")
	}
	if err := f.Sign("acme-gw", gw2); err == nil {
		t.Fatal("the replaced key still signs acme-gw")
	}
}

func TestWithdrawnTargetIsGoneFromTheNextBundle(t *testing.T) {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.addApp("acme-gw/app-1.0.1.bin", "1.0.1", 2, "")
	f.must(f.Sign("targets", f.targets))
	f.publish()
	role, err := f.Withdraw("acme-gw/app-1.0.1.bin")
	f.must(err)
	if role != "targets" {
		t.Fatalf("withdrawn from %s", role)
	}
	if _, err := os.Stat(f.PayloadPath("acme-gw/app-1.0.1.bin")); !os.IsNotExist(err) {
		t.Fatalf("payload of the withdrawn target still in targets/: %v", err)
	}
	f.must(f.Sign("targets", f.targets))
	f.publish()
	var b bytes.Buffer
	if err := f.Bundle(&b, []string{"acme-gw/app-1.0.1.bin"}); err == nil {
		t.Fatal("bundled a withdrawn target")
	}
	data := f.bundle()
	inv, err := Inspect(bytes.NewReader(data), int64(len(data)))
	f.must(err)
	if len(inv.Targets) != 1 || inv.Targets[0].Path != "acme-gw/app-1.0.0.bin" {
		t.Fatalf("targets after withdraw: %+v", inv.Targets)
	}
	if _, err := f.Withdraw("acme-gw/app-1.0.1.bin"); err == nil {
		t.Fatal("withdrew a target twice")
	}
}

func TestTargetMetadataIsCheckedAtTheReleaseDesk(t *testing.T) {
	f := newFixture(t)
	file := f.payload("app.bin", []byte("app"))
	for _, c := range []struct {
		path string
		meta verify.TargetMeta
		want string
	}{
		{"../evil.bin", appMeta("1.0.0", 1), "not allowed"},
		{"/abs.bin", appMeta("1.0.0", 1), "target path"},
		{"a/app.bin", verify.TargetMeta{Version: "1.0.0", Component: "app"}, "no hardware id"},
		{"a/app.bin", appMeta("1.0", 1), "not semver"},
		{"a/app.bin", verify.TargetMeta{HardwareIDs: []string{"x"}, Version: "1.0.0", Component: "app", Format: "elf"}, "format"},
		{"a/app.bin", verify.TargetMeta{HardwareIDs: []string{"x"}, Version: "1.0.0", Component: "app", Requires: []verify.Requirement{{Component: "bootloader", Version: "~1.2"}}}, "constraint"},
	} {
		if _, err := f.AddTarget(NewTarget{Path: c.path, File: file, Meta: c.meta}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: %v, want an error with %q", c.path, c.meta, err, c.want)
		}
	}
	req, err := ParseRequirement("bootloader>=1.2.0 <2.0.0")
	f.must(err)
	if req.Component != "bootloader" || req.Version != ">=1.2.0 <2.0.0" {
		t.Fatalf("requirement %+v", req)
	}
}

func TestInspectShowsTheSignedCustomFields(t *testing.T) {
	f := newFixture(t)
	slot := 0
	m := verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: "1.2.3+45", ReleaseCounter: 7, Component: "app", Format: "mcuboot",
		Protocol: verify.ProtocolHints{Protocols: []string{"smp"}, ImageSlot: &slot}, Requires: []verify.Requirement{{Component: "bootloader", Version: ">=1.2.0"}},
		ReleaseNotes: "Fixes the watchdog.", Advisories: []string{"ACME-SA-2026-07"}}
	// The image is imgtool's: version 1.2.3+45, security counter 7, as the metadata says.
	_, err := f.AddTarget(NewTarget{Path: "acme-gw/app.bin", File: filepath.Join(vectors, "mcuboot", "ed25519-basic.bin"), Meta: m})
	f.must(err)
	f.must(f.Sign("targets", f.targets))
	f.publish()
	data := f.bundle()
	inv, err := Inspect(bytes.NewReader(data), int64(len(data)))
	f.must(err)
	var custom map[string]verify.TargetMeta
	f.must(json.Unmarshal(inv.Targets[0].Custom, &custom))
	got, _ := json.Marshal(custom[verify.CustomKey])
	want, _ := json.Marshal(m)
	if !bytes.Equal(got, want) {
		t.Fatalf("custom.fieldflash in the bundle:\n%s\nwant\n%s", got, want)
	}
	if inv.Repository != "Acme Devices" || len(inv.Payloads) != 1 || !inv.Payloads[0].HashOK {
		t.Fatalf("inventory: %+v", inv)
	}
	if !strings.Contains(inv.String(), "acme-gw/app.bin") {
		t.Fatalf("text inventory lacks the target:\n%s", inv)
	}
}

func TestExpiryReadsLifetimesAndDates(t *testing.T) {
	for in, want := range map[string]time.Time{
		"365d":                 t0.Add(365 * 24 * time.Hour),
		"2w":                   t0.Add(14 * 24 * time.Hour),
		"36h":                  t0.Add(36 * time.Hour),
		"2036-01-01":           time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		"2036-01-01T12:00:00Z": time.Date(2036, 1, 1, 12, 0, 0, 0, time.UTC),
	} {
		got, err := ParseExpiry(in, t0)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-3d", "3y", "99999999999999d", "tomorrow"} {
		if _, err := ParseExpiry(in, t0); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// A bundle from elsewhere is outside bytes: inspect must never panic on it.
func FuzzInspect(f *testing.F) {
	fx := newFixture(f)
	fx.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	fx.must(fx.Sign("targets", fx.targets))
	fx.publish()
	good := fx.bundle()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	c, err := fx.Contents(nil)
	fx.must(err)
	c.Targets = []byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":9,"expires":"2030-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`)
	var null bytes.Buffer
	fx.must(bundle.Write(&null, c))
	f.Add(null.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Inspect(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			_ = inv.String()
		}
	})
}

// Metadata copies come back from other machines: merge must refuse anything but a copy of the
// same signed content with valid signatures, and never panic.
func FuzzMerge(f *testing.F) {
	fx := newFixture(f)
	fx.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	unsigned, err := fx.RoleFile("targets")
	fx.must(err)
	fx.must(fx.Sign("targets", fx.targets))
	signed, err := fx.RoleFile("targets")
	fx.must(err)
	root, err := fx.RoleFile("root")
	fx.must(err)
	f.Add("targets", signed)
	f.Add("targets", unsigned)
	f.Add("root", root)
	f.Add("snapshot", []byte(`{"signed":{"_type":"snapshot"},"signatures":[]}`))
	f.Add("targets", []byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`))
	f.Add("root", []byte(`{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","keys":{"a":null},"roles":{"root":{"keyids":["a"],"threshold":1}}},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, role string, data []byte) {
		added, err := fx.Merge(role, data)
		if err != nil {
			return
		}
		// Whatever was taken must leave a repository that still reads and whose signatures
		// all verify: a signature only counts when it verifies.
		st, err := fx.Status()
		if err != nil {
			t.Fatalf("merge of %q (added %v) left an unreadable repository: %v", data, added, err)
		}
		for _, rs := range st.Roles {
			for _, sc := range rs.Signatures {
				if len(sc.SignedBy) > len(sc.KeyIDs) {
					t.Fatalf("role %s counts %d signers of %d keys", rs.Role, len(sc.SignedBy), len(sc.KeyIDs))
				}
			}
		}
	})
}

// vectors is the repository's folder of real-world vectors made with upstream tools.
const vectors = "../../testdata"

func TestImageThatContradictsItsMetadataIsRefusedAtTheDesk(t *testing.T) {
	f := newFixture(t)
	img := filepath.Join(vectors, "mcuboot", "ed25519-basic.bin") // imgtool: 1.2.3+45, security counter 7
	meta := verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: "1.2.4", ReleaseCounter: 7, Component: "app", Format: "mcuboot"}
	_, err := f.AddTarget(NewTarget{Path: "acme-gw/app.bin", File: img, Meta: meta})
	if err == nil || !strings.Contains(err.Error(), "MCUboot header version is 1.2.3") {
		t.Fatalf("MCUboot image 1.2.3+45 listed as 1.2.4: %v", err)
	}
	meta.Version, meta.ReleaseCounter = "1.2.3+45", 9
	if _, err := f.AddTarget(NewTarget{Path: "acme-gw/app.bin", File: img, Meta: meta}); err == nil || !strings.Contains(err.Error(), "security counter") {
		t.Fatalf("security counter 7 listed as release counter 9: %v", err)
	}
	meta.ReleaseCounter = 7
	if _, err := f.AddTarget(NewTarget{Path: "acme-gw/app.bin", File: img, Meta: meta}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(vectors, "dfu", "fail-suffix-crc.dfu")
	_, err = f.AddTarget(NewTarget{Path: "acme-gw/boot.dfu", File: bad, Meta: verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: "1.0.0", Component: "bootloader", Format: "dfu"}})
	if err == nil {
		t.Fatal("DFU file with a bad suffix CRC listed")
	}
	if _, err := os.Stat(f.PayloadPath("acme-gw/boot.dfu")); !os.IsNotExist(err) {
		t.Fatalf("refused payload left in targets/: %v", err)
	}
}

// A delegation that confines its role to hardware ids binds every role below it: the
// release desk refuses a target for other hardware before anything is signed.
func TestDelegatedRoleSignsOnlyForItsHardware(t *testing.T) {
	f := newFixture(t)
	gw, rel := testKey(t, "gw-1"), testKey(t, "gw-release")
	f.must(f.Delegate(Delegation{Name: "acme-gw", RoleKeys: RoleKeys{pubs(gw), 1}, Paths: []string{"acme-gw/*"}, HardwareIDs: []string{"acme-gw-r2"}}))
	f.must(f.Delegate(Delegation{Name: "acme-gw-7", Delegator: "acme-gw", RoleKeys: RoleKeys{pubs(rel), 1}, Paths: []string{"acme-gw/*"}}))
	m := appMeta("7.0.0", 7)
	m.HardwareIDs = []string{"acme-gw-r2", "acme-sensor-r1"}
	_, err := f.AddTarget(NewTarget{Path: "acme-gw/app-7.bin", File: f.payload("x", []byte("x")), Role: "acme-gw-7", Meta: m})
	if err == nil || !strings.Contains(err.Error(), "targets delegates to role acme-gw only hardware acme-gw-r2, not acme-sensor-r1") {
		t.Fatalf("a target for other hardware two delegations down: %v", err)
	}
	f.addApp("acme-gw/app-7.bin", "7.0.0", 7, "acme-gw-7")
}
