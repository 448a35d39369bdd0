package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestTechnicianVerifiesABasicBundle(t *testing.T) {
	r, sha := fxBasic(t)
	path := r.write("acme-1.0.0.fwb")
	v := fxAccept(t, path, r.opts(nil))

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := substitutedDigest(file, v.Targets); v.Digest != want {
		t.Errorf("Verified.Digest = %s, want %s", v.Digest, want)
	}
	if v.Repository != "acme" || v.RootVersion != 1 || v.Older {
		t.Errorf("repository %q root v%d older %v", v.Repository, v.RootVersion, v.Older)
	}
	if len(v.Targets) != 1 {
		t.Fatalf("%d targets, want 1", len(v.Targets))
	}
	tg := v.Targets[0]
	if tg.Path != "acme-gw/app-1.0.0.bin" || tg.SHA256 != sha || tg.Role != "targets" || tg.Image != nil {
		t.Errorf("target %+v", tg)
	}
	if !reflect.DeepEqual(tg.Meta, fxMeta()) {
		t.Errorf("meta %+v, want %+v", tg.Meta, fxMeta())
	}
	if got := file[tg.Offset : tg.Offset+tg.Length]; !bytes.Equal(got, r.payloads[sha]) {
		t.Errorf("bytes at Offset %d are %q, not the payload", tg.Offset, got)
	}
	var names []string
	for _, role := range v.Roles {
		names = append(names, role.Name)
		if len(role.SignedBy) != 1 || role.Threshold != 1 || !role.Expires.Equal(fxExpires) {
			t.Errorf("role %+v", role)
		}
	}
	if strings.Join(names, ",") != "root,timestamp,snapshot,targets" {
		t.Errorf("roles %v", names)
	}
	if !v.RefTime.Equal(fxNow) {
		t.Errorf("RefTime %v", v.RefTime)
	}
}

// substitutedDigest is the bundle digest of docs/bundle-format.md computed the plain way:
// the file's bytes with each payload's data cut out and its SHA-256 put in.
func substitutedDigest(file []byte, targets []Target) string {
	var stream []byte
	pos := int64(0)
	sorted := append([]Target(nil), targets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	for _, tg := range sorted {
		stream = append(stream, file[pos:tg.Offset]...)
		sum := sha256.Sum256(file[tg.Offset : tg.Offset+tg.Length])
		stream = append(stream, sum[:]...)
		pos = tg.Offset + tg.Length
	}
	stream = append(stream, file[pos:]...)
	d := sha256.Sum256(stream)
	return hex.EncodeToString(d[:])
}

func TestBundleDigestCoversLargePayloadsHashedAlongside(t *testing.T) {
	r := fxNewRepo(t)
	big := make([]byte, 5<<20+123) // several 1 MiB reads, and a tail
	for i := range big {
		big[i] = byte(i * 7)
	}
	r.addTarget("targets", "acme-gw/big.bin", big, fxMeta())
	r.addTarget("targets", "acme-gw/small.bin", []byte("small"), TargetMeta{HardwareIDs: []string{"acme-gw-r1"}, Version: "1.0.0", Component: "radio"})
	path := r.write("big.fwb")
	v := fxAccept(t, path, r.opts(nil))
	file, _ := os.ReadFile(path)
	if want := substitutedDigest(file, v.Targets); v.Digest != want {
		t.Errorf("Verified.Digest = %s, want %s", v.Digest, want)
	}
	whole := sha256.Sum256(file)
	if v.Digest == hex.EncodeToString(whole[:]) {
		t.Error("the digest equals the plain file hash: payloads were not substituted")
	}
	if len(v.Targets) != 2 {
		t.Errorf("%d targets", len(v.Targets))
	}
}

func TestDelegatedRoleWithTwoKeysSignsThePayload(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 2, false, fxNewKey(t, "acme-gw-a"), fxNewKey(t, "acme-gw-b"))
	r.addTarget("acme-gw", "acme-gw/app.bin", []byte("delegated app"), fxMeta())
	v := fxAccept(t, r.write("delegated.fwb"), r.opts(nil))
	if v.Targets[0].Role != "acme-gw" {
		t.Errorf("governed by %q", v.Targets[0].Role)
	}
	last := v.Roles[len(v.Roles)-1]
	if last.Name != "acme-gw" || last.Delegator != "targets" || last.Threshold != 2 || len(last.SignedBy) != 2 {
		t.Errorf("delegated role %+v", last)
	}
}

func TestDelegatedRoleCannotSignPathsOutsideItsDelegation(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	r.addTarget("acme-gw", "other/app.bin", []byte("smuggled"), fxMeta())
	e := fxRefusal(t, r.write("outside.fwb"), r.opts(nil), CodePayload)
	fxSays(t, e, "role acme-gw lists it as other/app.bin", "targets delegates only acme-gw/* to acme-gw",
		"the release team must sign it with a role delegated for other/app.bin")
	if strings.Contains(e.Reason, "another release") {
		t.Errorf("message %q blames another release for a payload this release's role signed", e.Error())
	}
}

func TestTerminatingDelegationHidesLaterRoles(t *testing.T) {
	for _, terminating := range []bool{false, true} {
		r := fxNewRepo(t)
		r.delegate("first", []string{"fw/*"}, 1, terminating, fxNewKey(t, "first"))
		r.delegate("second", []string{"fw/*"}, 1, false, fxNewKey(t, "second"))
		r.addTarget("second", "fw/app.bin", []byte("second's app"), fxMeta())
		path := r.write("walk.fwb")
		if terminating {
			e := fxRefusal(t, path, r.opts(nil), CodePayload)
			fxSays(t, e, "role second lists it as fw/app.bin",
				"targets delegates fw/* to role first as terminating, which ends the delegation walk for that path before it reaches second",
				"the release team must sign it with a role delegated for fw/app.bin")
		} else if v := fxAccept(t, path, r.opts(nil)); v.Targets[0].Role != "second" {
			t.Errorf("governed by %q", v.Targets[0].Role)
		}
	}
}

func TestFirstRoleOnTheWalkGovernsAPath(t *testing.T) {
	// "first" lists the path with other content; "second" lists the payload's hash for
	// the same path. The walk reaches "first" first, so the payload is not trusted.
	r := fxNewRepo(t)
	r.delegate("first", []string{"fw/*"}, 1, false, fxNewKey(t, "first"))
	r.delegate("second", []string{"fw/*"}, 1, false, fxNewKey(t, "second"))
	r.addTarget("first", "fw/app.bin", []byte("first's app"), fxMeta())
	first := fxHash([]byte("first's app"))
	delete(r.payloads, first)
	r.addTarget("second", "fw/app.bin", []byte("second's app"), fxMeta())
	e := fxRefusal(t, r.write("shadowed.fwb"), r.opts(nil), CodePayload)
	fxSays(t, e, "role second lists it as fw/app.bin", "reaches role first before second, and first lists it with other hashes (sha256 "+first[:8]+"…",
		"only the first role on the walk counts", "sign it with role first")
}

func TestRoleDelegatedThroughANarrowerRoleCannotSignOtherPaths(t *testing.T) {
	// targets trusts "vendor" for acme-gw/*; "vendor" trusts "team" for everything. So
	// "team" may sign acme-gw/* only, and its other/app.bin does not count.
	r := fxNewRepo(t)
	r.delegate("vendor", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "vendor"))
	team := fxNewKey(t, "team")
	r.delegated["vendor"].Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{team.id: team.key},
		Roles: []metadata.DelegatedRole{{Name: "team", KeyIDs: []string{team.id}, Threshold: 1, Paths: []string{"*/*"}}},
	}
	r.delegated["team"] = metadata.Targets(fxExpires)
	r.signers["team"] = []fxKey{team}
	r.addTarget("team", "other/app.bin", []byte("team's app"), fxMeta())
	e := fxRefusal(t, r.write("narrow.fwb"), r.opts(nil), CodePayload)
	fxSays(t, e, "role team lists it as other/app.bin", "targets delegates only acme-gw/* to vendor (on the way to team)",
		"the release team must sign it with a role delegated for other/app.bin")

	r.addTarget("team", "acme-gw/app.bin", []byte("team's gateway app"), fxMeta())
	delete(r.payloads, fxHash([]byte("team's app")))
	if v := fxAccept(t, r.write("inside.fwb"), r.opts(nil)); v.Targets[0].Role != "team" {
		t.Errorf("acme-gw/app.bin governed by %q, want team", v.Targets[0].Role)
	}
}

// fxSays checks that the refusal's message says every one of parts.
func fxSays(t *testing.T, e *Error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(e.Error(), p) {
			t.Errorf("message %q does not say %q", e.Error(), p)
		}
	}
}

func fxHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRootChainWithRotatedKeysIsFollowed(t *testing.T) {
	r, _ := fxBasic(t)
	old := r.rootKeys[0]
	k2, k3 := fxNewKey(t, "root-2"), fxNewKey(t, "root-3")
	t2 := fxNewKey(t, "targets-2")
	r.rotateRoot(func(s *metadata.RootType) {
		_ = s.RevokeKey(old.id, "root")
		_ = s.AddKey(k2.key, "root")
		_ = s.RevokeKey(r.signers["targets"][0].id, "targets")
		_ = s.AddKey(t2.key, "targets")
	}, old, k2)
	r.rotateRoot(func(s *metadata.RootType) {
		_ = s.RevokeKey(k2.id, "root")
		_ = s.AddKey(k3.key, "root")
	}, k2, k3)
	r.signers["targets"] = []fxKey{t2}
	st := NewMemoryState()
	v := fxAccept(t, r.write("rotated.fwb"), r.opts(st))
	if v.RootVersion != 3 {
		t.Errorf("root v%d, want 3", v.RootVersion)
	}
	saved, _ := st.Load(r.pinned().StateKey())
	if !bytes.Equal(saved.Root, r.roots[3]) {
		t.Errorf("state did not keep root v3")
	}
}

func TestUnpinnedRootIsUntrusted(t *testing.T) {
	r, _ := fxBasic(t)
	other := fxNewRepo(t)
	other.rootKeys = []fxKey{fxNewKey(t, "mallory-root")}
	other.root.Signed.Keys = map[string]*metadata.Key{}
	other.root.Signed.Roles["root"].KeyIDs = nil
	_ = other.root.Signed.AddKey(other.rootKeys[0].key, "root")
	fxSign(t, other.root, other.rootKeys...)
	other.roots[1] = fxBytes(t, other.root)
	other.addTarget("targets", "acme-gw/app.bin", []byte("x"), fxMeta())
	path := other.write("foreign.fwb")
	fxRefusal(t, path, r.opts(nil), CodeUntrusted)
}

func TestDemoRootIsTrustedOnlyInDemoMode(t *testing.T) {
	r, _ := fxBasic(t)
	path := r.write("demo.fwb")
	opts := r.opts(nil)
	opts.Roots[0].Demo = true
	e := fxRefusal(t, path, opts, CodeUntrusted)
	if !strings.Contains(e.Reason, "demo") {
		t.Errorf("refusal does not mention demo mode: %v", e)
	}
	opts.DemoMode = true
	fxAccept(t, path, opts)
}

func TestFlippedSignatureIsABadSignature(t *testing.T) {
	r, _ := fxBasic(t)
	r.tamper["targets"] = func(sigs *[]metadata.Signature, _ any) { (*sigs)[0].Signature[5] ^= 0x40 }
	fxRefusal(t, r.write("flipped.fwb"), r.opts(nil), CodeBadSignature)
}

func TestTargetsSignedByOneOfTwoRequiredKeys(t *testing.T) {
	r, _ := fxBasic(t)
	second := fxNewKey(t, "targets-b")
	_ = r.root.Signed.AddKey(second.key, "targets")
	r.root.Signed.Roles["targets"].Threshold = 2
	fxSign(t, r.root, r.rootKeys...)
	r.roots[1] = fxBytes(t, r.root)
	e := fxRefusal(t, r.write("one-of-two.fwb"), r.opts(nil), CodeThreshold)
	if !strings.Contains(e.Reason, "signed by 1 of 2 required targets keys") || !strings.Contains(e.Next, "both") {
		t.Errorf("message %q", e.Error())
	}
}

func TestOneKeyUnderTwoKeyIDsCountsOnce(t *testing.T) {
	r, _ := fxBasic(t)
	k := r.signers["targets"][0]
	alias, aliasKey := fxAlias(t, k, "ab")
	r.root.Signed.Keys[alias] = aliasKey
	r.root.Signed.Roles["targets"].KeyIDs = append(r.root.Signed.Roles["targets"].KeyIDs, alias)
	r.root.Signed.Roles["targets"].Threshold = 2
	fxSign(t, r.root, r.rootKeys...)
	r.roots[1] = fxBytes(t, r.root)
	r.tamper["targets"] = func(sigs *[]metadata.Signature, _ any) {
		dup := (*sigs)[0]
		dup.KeyID = alias
		*sigs = append(*sigs, dup)
	}
	e := fxRefusal(t, r.write("counted-twice.fwb"), r.opts(nil), CodeThreshold)
	fxSays(t, e, "signed by 1 of 2 required targets keys", "key ids "+k.id[:8]+"… and "+alias[:8]+"… are the same key, which counts once",
		"root v1 lists 2 key ids for targets but 1 distinct key", "no bundle can meet that threshold",
		"the release team must list 2 distinct targets keys in new root metadata")
}

func TestKeyUnderTwoIDsBesideASecondKeyNeedsTheSecondKey(t *testing.T) {
	// The root lists a real second key, but the bundle is signed by the first key twice.
	r, _ := fxBasic(t)
	k := r.signers["targets"][0]
	alias, aliasKey := fxAlias(t, k, "cd")
	r.root.Signed.Keys[alias] = aliasKey
	r.root.Signed.Roles["targets"].KeyIDs = append(r.root.Signed.Roles["targets"].KeyIDs, alias)
	_ = r.root.Signed.AddKey(fxNewKey(t, "targets-b").key, "targets")
	r.root.Signed.Roles["targets"].Threshold = 2
	fxSign(t, r.root, r.rootKeys...)
	r.roots[1] = fxBytes(t, r.root)
	r.tamper["targets"] = func(sigs *[]metadata.Signature, _ any) {
		dup := (*sigs)[0]
		dup.KeyID = alias
		*sigs = append(*sigs, dup)
	}
	e := fxRefusal(t, r.write("counted-twice.fwb"), r.opts(nil), CodeThreshold)
	fxSays(t, e, "key ids "+k.id[:8]+"… and "+alias[:8]+"… are the same key, which counts once",
		"root v1 lists 3 key ids for targets but 2 distinct keys", "ask the release team for a bundle signed by 2 distinct targets keys")
}

func TestKeyDroppedByNewerRootIsRevoked(t *testing.T) {
	r, _ := fxBasic(t)
	k1 := r.signers["targets"][0]
	k2 := fxNewKey(t, "targets-2")
	r.rotateRoot(func(s *metadata.RootType) {
		_ = s.RevokeKey(k1.id, "targets")
		_ = s.AddKey(k2.key, "targets")
	}, r.rootKeys...)
	e := fxRefusal(t, r.write("revoked.fwb"), r.opts(nil), CodeRevokedKey)
	if !strings.Contains(e.Reason, "root v2") || !strings.Contains(e.Reason, "root v1") {
		t.Errorf("message %q does not say which roots", e.Error())
	}
}

func TestKeyDroppedByNewerDelegationIsRevoked(t *testing.T) {
	r := fxNewRepo(t)
	a, b := fxNewKey(t, "acme-gw-a"), fxNewKey(t, "acme-gw-b")
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, a)
	r.addTarget("acme-gw", "acme-gw/app.bin", []byte("app 1"), fxMeta())
	st := NewMemoryState()
	fxAccept(t, r.write("first.fwb"), r.opts(st))

	r.release()
	d := r.targets.Signed.Delegations
	delete(d.Keys, a.id)
	d.Keys[b.id] = b.key
	d.Roles[0].KeyIDs = []string{b.id}
	// the delegated role is still signed with the dropped key
	fxRefusal(t, r.write("second.fwb"), r.opts(st), CodeRevokedKey)
}

func TestRootChainWithAGapIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.rotateRoot(func(*metadata.RootType) {}, r.rootKeys...)
	r.rotateRoot(func(*metadata.RootType) {}, r.rootKeys...)
	delete(r.roots, 2)
	fxRefusal(t, r.write("skipped.fwb"), r.opts(nil), CodeRootSkipped)
}

func TestExpiredTargetsAreRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.targets.Signed.Expires = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	e := fxRefusal(t, r.write("expired.fwb"), r.opts(nil), CodeExpired)
	if !strings.HasPrefix(e.Thing, "targets.json") || !strings.Contains(e.Reason, "2026-06-01") {
		t.Errorf("message %q", e.Error())
	}
}

func TestFrozenTimestampIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.ts.Signed.Expires = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	e := fxRefusal(t, r.write("frozen.fwb"), r.opts(nil), CodeExpired)
	if !strings.HasPrefix(e.Thing, "timestamp.json") {
		t.Errorf("thing %q", e.Thing)
	}
}

func TestClockBehindTheNewestTrustedTimeIsReported(t *testing.T) {
	r, _ := fxBasic(t)
	r.ts.Signed.Expires = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	path := r.write("clock.fwb")
	st := NewMemoryState()
	_ = st.SaveNewestTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fxRefusal(t, path, r.opts(st), CodeClockBackwards)

	// Nothing expired: accepted, with the clock reported.
	st2 := NewMemoryState()
	_ = st2.SaveNewestTime(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
	v := fxAccept(t, path, r.opts(st2))
	if len(v.Warnings) == 0 || !v.RefTime.Equal(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("warnings %v reftime %v", v.Warnings, v.RefTime)
	}
}

// fxTwoReleases writes release 1 (payload A) and release 2 of the same repository.
// keepA says whether release 2 still lists A.
func fxTwoReleases(t *testing.T, keepA bool) (r *fxRepo, old, newer string) {
	r = fxNewRepo(t)
	shaA := r.addTarget("targets", "acme-gw/app-1.0.0.bin", []byte("release 1"), fxMeta())
	old = r.write("release-1.fwb")
	r.release()
	if !keepA {
		delete(r.targets.Signed.Targets, "acme-gw/app-1.0.0.bin")
	}
	delete(r.payloads, shaA)
	m := fxMeta()
	m.Version = "2.0.0"
	r.addTarget("targets", "acme-gw/app-2.0.0.bin", []byte("release 2"), m)
	newer = r.write("release-2.fwb")
	return r, old, newer
}

func TestOlderBundleStillListedIsAccepted(t *testing.T) {
	r, old, newer := fxTwoReleases(t, true)
	st := NewMemoryState()
	fxAccept(t, newer, r.opts(st))
	before, _ := st.Load(r.pinned().StateKey())
	v := fxAccept(t, old, r.opts(st))
	if !v.Older {
		t.Errorf("Verified.Older not set")
	}
	after, _ := st.Load(r.pinned().StateKey())
	if !reflect.DeepEqual(before, after) {
		t.Errorf("an older bundle changed the saved metadata")
	}
}

func TestWithdrawnReleaseIsRefused(t *testing.T) {
	r, old, newer := fxTwoReleases(t, false)
	st := NewMemoryState()
	fxAccept(t, newer, r.opts(st))
	e := fxRefusal(t, old, r.opts(st), CodeWithdrawn)
	if e.Thing != "payload acme-gw/app-1.0.0.bin" {
		t.Errorf("thing %q, want the payload's path in the bundle's own targets", e.Thing)
	}
	fxSays(t, e, "its own metadata (targets v1) name it app 1.0.0",
		"the newest metadata trusted here (targets v2) no longer list acme-gw/app-1.0.0.bin: the release was withdrawn",
		"ask the vendor for the current release's bundle")
}

func TestReleaseReplacedUnderTheSamePathIsWithdrawn(t *testing.T) {
	r := fxNewRepo(t)
	old1 := r.addTarget("targets", "acme-gw/app-1.0.0.bin", []byte("release 1"), fxMeta())
	old := r.write("release-1.fwb")
	r.release()
	delete(r.payloads, old1)
	rebuilt := r.addTarget("targets", "acme-gw/app-1.0.0.bin", []byte("release 1, rebuilt after a recall"), fxMeta())
	st := NewMemoryState()
	fxAccept(t, r.write("release-1-rebuilt.fwb"), r.opts(st))
	e := fxRefusal(t, old, r.opts(st), CodeWithdrawn)
	fxSays(t, e, "payload acme-gw/app-1.0.0.bin: ", "its own metadata (targets v1) name it app 1.0.0",
		"the newest metadata trusted here (targets v2) list acme-gw/app-1.0.0.bin with different hashes (sha256 "+rebuilt[:8]+"…, 33 bytes)",
		"the release was replaced", "ask the vendor for the current release's bundle")
}

func TestOlderPayloadWhoseListedLengthChangedIsWithdrawn(t *testing.T) {
	r, shaA := fxBasic(t)
	old := r.write("release-1.fwb")
	r.release()
	r.targets.Signed.Targets["acme-gw/app-1.0.0.bin"].Length++
	delete(r.payloads, shaA)
	r.addTarget("targets", "acme-gw/app-2.0.0.bin", []byte("release 2"), fxMeta())
	st := NewMemoryState()
	fxAccept(t, r.write("release-2.fwb"), r.opts(st))
	e := fxRefusal(t, old, r.opts(st), CodeWithdrawn)
	fxSays(t, e, "payload acme-gw/app-1.0.0.bin: ", "the newest metadata trusted here (targets v2) list it with 34 bytes, while the bundle carries 33",
		"ask the vendor for the current release's bundle")
}

func TestSnapshotRollbackIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.release()
	r.release() // ts v3, snapshot v3
	st := NewMemoryState()
	fxAccept(t, r.write("v3.fwb"), r.opts(st))
	r.ts.Signed.Version = 4
	r.snap.Signed.Version = 2
	fxRefusal(t, r.write("rollback-snapshot.fwb"), r.opts(st), CodeRollback)
}

func TestTargetsRollbackIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.release()
	r.release() // targets v3
	st := NewMemoryState()
	fxAccept(t, r.write("v3.fwb"), r.opts(st))
	r.ts.Signed.Version = 4
	r.snap.Signed.Version = 4
	r.targets.Signed.Version = 2
	fxRefusal(t, r.write("rollback-targets.fwb"), r.opts(st), CodeRollback)
}

func TestSameTimestampVersionWithOtherContentIsRollback(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	fxAccept(t, r.write("a.fwb"), r.opts(st))
	r.ts.Signed.Expires = fxExpires.Add(-time.Hour)
	fxRefusal(t, r.write("b.fwb"), r.opts(st), CodeRollback)
}

func TestVerifyingTheSameBundleTwiceIsFine(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	path := r.write("same.fwb")
	fxAccept(t, path, r.opts(st))
	if v := fxAccept(t, path, r.opts(st)); v.Older {
		t.Errorf("the same bundle is not older")
	}
}

func TestPayloadOfAnotherReleaseIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	for sha := range r.payloads {
		delete(r.payloads, sha)
	}
	r.payloads[fxHash([]byte("release 2 app"))] = []byte("release 2 app")
	e := fxRefusal(t, r.write("mixed.fwb"), r.opts(nil), CodePayload)
	if !strings.Contains(e.Reason, "another release") {
		t.Errorf("message %q", e.Error())
	}
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	r, sha := fxBasic(t)
	path := r.write("tampered.fwb")
	v := fxAccept(t, path, r.opts(nil))
	file, _ := os.ReadFile(path)
	file[v.Targets[0].Offset+3] ^= 1
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	e := fxRefusal(t, path, r.opts(nil), CodePayload)
	if !strings.Contains(e.Thing, "acme-gw/app-1.0.0.bin") {
		t.Errorf("thing %q does not name the payload %s", e.Thing, sha)
	}
}

func TestBundleWithoutPayloadIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	r.payloads = map[string][]byte{}
	fxRefusal(t, r.write("empty.fwb"), r.opts(nil), CodeNoPayload)
}

func TestContainerRefusalsKeepTheirCode(t *testing.T) {
	r, _ := fxBasic(t)
	path := r.write("garbage.fwb")
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write([]byte("trailing"))
	f.Close()
	fxRefusal(t, path, r.opts(nil), CodeTrailingGarbage)

	path = r.write("cut.fwb")
	file, _ := os.ReadFile(path)
	_ = os.WriteFile(path, file[:len(file)-1500], 0o644)
	fxRefusal(t, path, r.opts(nil), CodeTruncated)

	_, err := VerifyFile(path+".missing", r.opts(nil))
	if CodeOf(err) != CodeIO {
		t.Errorf("missing file: %v", err)
	}
}

func TestTargetMetadataMustDescribeTheImage(t *testing.T) {
	for name, change := range map[string]func(*TargetMeta){
		"no hardware":   func(m *TargetMeta) { m.HardwareIDs = nil },
		"bad version":   func(m *TargetMeta) { m.Version = "1.2" },
		"no component":  func(m *TargetMeta) { m.Component = "" },
		"bad format":    func(m *TargetMeta) { m.Format = "elf" },
		"bad requires":  func(m *TargetMeta) { m.Requires = []Requirement{{Component: "bootloader", Version: ">=two"}} },
		"empty hw name": func(m *TargetMeta) { m.HardwareIDs = []string{""} },
	} {
		t.Run(name, func(t *testing.T) {
			r := fxNewRepo(t)
			m := fxMeta()
			change(&m)
			r.addTarget("targets", "acme-gw/app.bin", []byte("app"), m)
			fxRefusal(t, r.write("meta.fwb"), r.opts(nil), CodeMetadata)
		})
	}
}

func TestImageForOtherHardwareIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	opts := r.opts(nil)
	opts.Hardware = "acme-gw-r2"
	fxRefusal(t, r.write("hw.fwb"), opts, CodeHardware)
	opts.Hardware = "acme-gw-r1"
	fxAccept(t, r.write("hw.fwb"), opts)
}

func TestReleaseCounterBelowTheDevicesIsRefused(t *testing.T) {
	r, _ := fxBasic(t) // counter 5
	opts := r.opts(nil)
	nine, five := uint64(9), uint64(5)
	opts.CurrentCounter = &nine
	fxRefusal(t, r.write("counter.fwb"), opts, CodeReleaseCounter)
	opts.CurrentCounter = &five
	fxAccept(t, r.write("counter.fwb"), opts)
}

func TestRequirementOnAnotherComponent(t *testing.T) {
	r := fxNewRepo(t)
	m := fxMeta()
	m.Requires = []Requirement{{Component: "bootloader", Version: ">=2.0.0"}}
	r.addTarget("targets", "acme-gw/app.bin", []byte("app"), m)
	path := r.write("req.fwb")
	opts := r.opts(nil)
	opts.Installed = map[string]string{"bootloader": "1.4.0"}
	e := fxRefusal(t, path, opts, CodeRequirement)
	if !strings.Contains(e.Reason, "1.4.0") || !strings.Contains(e.Next, "bootloader") {
		t.Errorf("message %q", e.Error())
	}
	opts.Installed = map[string]string{"bootloader": "2.1.0"}
	fxAccept(t, path, opts)
	opts.Installed = map[string]string{}
	fxRefusal(t, path, opts, CodeRequirement)
	opts.Installed = nil // nothing known about the device: only in-bundle requirements count
	fxAccept(t, path, opts)

	// The bundle carries the bootloader it needs: that one counts, not the installed one.
	bl := TargetMeta{HardwareIDs: []string{"acme-gw-r1"}, Version: "2.0.0", Component: "bootloader"}
	r.addTarget("targets", "acme-gw/bootloader.bin", []byte("bootloader"), bl)
	opts.Installed = map[string]string{"bootloader": "1.4.0"}
	fxAccept(t, r.write("req-carried.fwb"), opts)
	bl.Version = "1.9.0"
	r.addTarget("targets", "acme-gw/bootloader.bin", []byte("bootloader"), bl)
	opts.Installed = map[string]string{"bootloader": "3.0.0"}
	fxRefusal(t, r.write("req-carried-old.fwb"), opts, CodeRequirement)
}

func TestRefusalLeavesTheStateAlone(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	fxAccept(t, r.write("good.fwb"), r.opts(st))
	before, _ := st.Load(r.pinned().StateKey())
	beforeTime, _ := st.NewestTime()

	r.release()
	opts := r.opts(st)
	opts.Hardware = "acme-gw-r2" // fails only after the metadata verified
	opts.Now = func() time.Time { return fxNow.Add(24 * time.Hour) }
	fxRefusal(t, r.write("newer-wrong-hw.fwb"), opts, CodeHardware)
	after, _ := st.Load(r.pinned().StateKey())
	afterTime, _ := st.NewestTime()
	if !reflect.DeepEqual(before, after) || !beforeTime.Equal(afterTime) {
		t.Errorf("a refused bundle changed the state")
	}

	opts.Hardware = ""
	fxAccept(t, r.write("newer.fwb"), opts)
	after, _ = st.Load(r.pinned().StateKey())
	afterTime, _ = st.NewestTime()
	ts, _ := decodeTimestamp(after.Timestamp, "")
	if ts.Signed.Version != 2 || !afterTime.Equal(fxNow.Add(24*time.Hour)) {
		t.Errorf("state after a newer bundle: timestamp v%d, newest time %v", ts.Signed.Version, afterTime)
	}
}

func TestRotatedRootIsRememberedAcrossBundles(t *testing.T) {
	r, _ := fxBasic(t)
	k2 := fxNewKey(t, "root-2")
	r.rotateRoot(func(s *metadata.RootType) {
		_ = s.RevokeKey(r.rootKeys[0].id, "root")
		_ = s.AddKey(k2.key, "root")
	}, r.rootKeys[0], k2)
	r.rotateRoot(func(*metadata.RootType) {}, k2)
	st := NewMemoryState()
	fxAccept(t, r.write("chain.fwb"), r.opts(st))

	// A later bundle carries only the newest root: the pinned v1 no longer leads to it,
	// the root this machine saved does.
	r.release()
	c := r.contents()
	c.Roots = map[int64][]byte{3: r.roots[3]}
	path := fxWrite(t, "newest-root-only.fwb", c)
	if v := fxAccept(t, path, r.opts(st)); v.RootVersion != 3 {
		t.Errorf("root v%d", v.RootVersion)
	}
	fxRefusal(t, path, r.opts(NewMemoryState()), CodeUntrusted)
}

func TestBundleOlderThanThePinnedRootVerifiesUnderIt(t *testing.T) {
	// The app pins root v2, which only renewed v1; a bundle made under v1 carries 1.root.json.
	r, _ := fxBasic(t)
	r.rotateRoot(func(*metadata.RootType) {}, r.rootKeys...)
	c := r.contents()
	c.Roots = map[int64][]byte{1: r.roots[1]}
	path := fxWrite(t, "made-under-v1.fwb", c)
	opts := r.opts(nil)
	opts.Roots[0].Root = r.roots[2]
	if v := fxAccept(t, path, opts); v.RootVersion != 2 {
		t.Errorf("root v%d, want the pinned v2", v.RootVersion)
	}

	// Another vendor's bundle with a shorter chain is still untrusted, not "bad signature".
	other := fxNewRepo(t)
	other.signers["targets"] = []fxKey{fxNewKey(t, "mallory-targets")}
	other.root.Signed.Keys = map[string]*metadata.Key{}
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		other.root.Signed.Roles[role].KeyIDs = nil
		k := fxNewKey(t, "mallory-"+role)
		_ = other.root.Signed.AddKey(k.key, role)
		if role == "root" {
			other.rootKeys = []fxKey{k}
		} else {
			other.signers[role] = []fxKey{k}
		}
	}
	fxSign(t, other.root, other.rootKeys...)
	other.roots[1] = fxBytes(t, other.root)
	other.addTarget("targets", "acme-gw/app.bin", []byte("x"), fxMeta())
	fxRefusal(t, other.write("foreign-v1.fwb"), opts, CodeUntrusted)
}

func TestEveryHashTheTargetListsIsChecked(t *testing.T) {
	r := fxNewRepo(t)
	content := []byte("app with two hashes")
	r.addTarget("targets", "acme-gw/app.bin", content, fxMeta())
	tf := r.targets.Signed.Targets["acme-gw/app.bin"]
	both, err := metadata.TargetFile().FromBytes("acme-gw/app.bin", content, "sha256", "sha512")
	if err != nil {
		t.Fatal(err)
	}
	tf.Hashes = both.Hashes
	fxAccept(t, r.write("two-hashes.fwb"), r.opts(nil))

	tf.Hashes["sha512"][0] ^= 1 // signed, but not the payload's
	fxRefusal(t, r.write("wrong-sha512.fwb"), r.opts(nil), CodePayload)

	tf.Hashes["md5"] = []byte{1, 2, 3}
	fxRefusal(t, r.write("md5.fwb"), r.opts(nil), CodeMetadata)
}

func TestDamagedTrustStateIsReportedNotTrusted(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	path := r.write("good.fwb")
	fxAccept(t, path, r.opts(st))
	saved, _ := st.Load(r.pinned().StateKey())
	saved.Timestamp = []byte(`{"signed":{"_type":"timestamp","version":9,"expires":"2036-01-01T00:00:00Z","meta":{}},"signatures":[]}`)
	_ = st.Save(r.pinned().StateKey(), saved)
	e := fxRefusal(t, path, r.opts(st), CodeIO)
	if !strings.Contains(e.Thing, "trust state") {
		t.Errorf("thing %q", e.Thing)
	}
}

// fxForeignRepo is another vendor's repository, with its own root key, named like r.
func fxForeignRepo(t *testing.T, keyName string) *fxRepo {
	other := fxNewRepo(t)
	other.rootKeys = []fxKey{fxNewKey(t, keyName)}
	other.root.Signed.Keys = map[string]*metadata.Key{}
	other.root.Signed.Roles["root"].KeyIDs = nil
	for role, keys := range map[string][]fxKey{"root": other.rootKeys, "timestamp": other.signers["timestamp"], "snapshot": other.signers["snapshot"], "targets": other.signers["targets"]} {
		for _, k := range keys {
			_ = other.root.Signed.AddKey(k.key, role)
		}
	}
	fxSign(t, other.root, other.rootKeys...)
	other.roots[1] = fxBytes(t, other.root)
	return other
}

// State is kept per pinned root, not per name: a different root pinned under a name that
// already has saved state starts from that root, and the old chain's newest root, saved
// under the name, trusts nothing any more.
func TestADifferentRootPinnedUnderTheSameNameStartsFresh(t *testing.T) {
	r, _ := fxBasic(t)
	k2 := fxNewKey(t, "root-2")
	r.rotateRoot(func(s *metadata.RootType) {
		_ = s.RevokeKey(r.rootKeys[0].id, "root")
		_ = s.AddKey(k2.key, "root")
	}, r.rootKeys[0], k2)
	st := NewMemoryState()
	oldChain := r.write("old-chain.fwb")
	fxAccept(t, oldChain, r.opts(st))

	fresh := fxForeignRepo(t, "fresh-root")
	fresh.addTarget("targets", "acme-gw/app-2.0.0.bin", []byte("fresh release"), fxMeta())
	opts := fresh.opts(st) // pinned as "acme", like the old root
	if fresh.pinned().Name != r.pinned().Name || fresh.pinned().StateKey() == r.pinned().StateKey() {
		t.Fatalf("state keys %q and %q", fresh.pinned().StateKey(), r.pinned().StateKey())
	}
	fxRefusal(t, oldChain, opts, CodeUntrusted)
	if v := fxAccept(t, fresh.write("fresh.fwb"), opts); v.RootVersion != 1 {
		t.Errorf("root v%d, want the fresh root v1", v.RootVersion)
	}
}

// A saved root that does not continue the pin (older, or another root of the pin's own
// version) did not come from that pin: it is reported, not trusted.
func TestSavedRootThatDoesNotChainFromThePinIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	path := r.write("good.fwb")
	fxAccept(t, path, r.opts(st))
	other := fxForeignRepo(t, "mallory-root")
	saved, _ := st.Load(r.pinned().StateKey())
	saved.Root = other.roots[1]
	_ = st.Save(r.pinned().StateKey(), saved)
	e := fxRefusal(t, path, r.opts(st), CodeIO)
	if !strings.Contains(e.Reason, "does not chain from the pinned root") {
		t.Errorf("reason %q", e.Reason)
	}
}

// Demo mode trusts the demo root only: a vendor's bundle verified there would be checked
// without the vendor's remembered state, so a withdrawn release would pass.
func TestDemoModeTrustsTheDemoRootOnly(t *testing.T) {
	r, _ := fxBasic(t)
	st := NewMemoryState()
	withdrawn := r.write("vendor-1.0.0.fwb")
	fxAccept(t, withdrawn, r.opts(st))
	r.release()
	delete(r.targets.Signed.Targets, "acme-gw/app-1.0.0.bin")
	r.payloads = map[string][]byte{}
	r.addTarget("targets", "acme-gw/app-1.1.0.bin", []byte("1.1.0"), fxMeta())
	fxAccept(t, r.write("vendor-1.1.0.fwb"), r.opts(st))
	fxRefusal(t, withdrawn, r.opts(st), CodeWithdrawn)

	demo := fxForeignRepo(t, "demo-root")
	demoOpts := Options{Roots: []PinnedRoot{r.pinned(), {Name: "fieldflash-demo", Root: demo.roots[1], Demo: true}},
		DemoMode: true, State: NewMemoryState(), Now: func() time.Time { return fxNow }}
	e := fxRefusal(t, withdrawn, demoOpts, CodeUntrusted)
	fxSays(t, e, "demo mode trusts the demo root only", "without --demo")
	demo.addTarget("targets", "demo/app.bin", []byte("demo"), fxMeta())
	fxAccept(t, demo.write("demo.fwb"), demoOpts)
}
