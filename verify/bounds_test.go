package verify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// junkSignatures appends n signatures by key ids nobody lists.
func junkSignatures(n int) func(*[]metadata.Signature, any) {
	return func(sigs *[]metadata.Signature, _ any) {
		for i := range n {
			*sigs = append(*sigs, metadata.Signature{KeyID: fmt.Sprintf("%06d", i)})
		}
	}
}

// An unsigned timestamp padded to 4 MiB with junk signatures is refused from its size in
// signatures, before go-tuf's duplicate check (quadratic in their number) runs on it.
func TestTimestampPaddedWithJunkSignaturesIsRefusedBeforeParsing(t *testing.T) {
	r, _ := fxBasic(t)
	r.tamper["timestamp"] = junkSignatures(130_000)
	path := r.write("padded.fwb")
	e := fxRefusal(t, path, r.opts(NewMemoryState()), CodeTooLarge)
	fxSays(t, e, "timestamp.json", "carries 130001 signatures; at most 256 are read")
}

// A real bundle's timestamp with a few hundred junk signatures beside the real one still
// verifies (the threshold is met), but only the signature that counted is saved: the
// padding must not cost every later verification of that release.
func TestOnlyTheSignaturesThatCountedAreSaved(t *testing.T) {
	r, _ := fxBasic(t)
	r.tamper["timestamp"] = junkSignatures(MaxSignatures - 1)
	st := NewMemoryState()
	path := r.write("padded.fwb")
	fxAccept(t, path, r.opts(st))
	saved, _ := st.Load(r.pinned().StateKey())
	ts, e := decodeTimestamp(saved.Timestamp, "saved timestamp")
	if e != nil {
		t.Fatal(e)
	}
	if len(ts.Signatures) != 1 || ts.Signatures[0].KeyID != r.signers["timestamp"][0].id {
		t.Fatalf("saved %d signatures (%d bytes); want only the timestamp key's", len(ts.Signatures), len(saved.Timestamp))
	}
	fxAccept(t, path, r.opts(st)) // and what was saved still governs
}

func TestRootWithTooManyKeysOrKeyIDsIsRefused(t *testing.T) {
	keys := make([]string, MaxKeys+1)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"%064x":{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}`, i)
	}
	root := func(keys []string, rootIDs int) []byte {
		ids := make([]string, rootIDs)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"%064x"`, i)
		}
		return []byte(`{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","consistent_snapshot":false,` +
			`"keys":{` + strings.Join(keys, ",") + `},"roles":{"root":{"keyids":[` + strings.Join(ids, ",") + `],"threshold":1}}},"signatures":[]}`)
	}
	if _, e := decodeRoot(root(keys, 1), "root.json"); e == nil || e.Code != CodeTooLarge || !strings.Contains(e.Reason, "lists 1025 keys") {
		t.Fatalf("a root of %d keys: %v", len(keys), e)
	}
	if _, e := decodeRoot(root(keys[:MaxRoleKeyIDs+1], MaxRoleKeyIDs+1), "root.json"); e == nil || e.Code != CodeTooLarge || !strings.Contains(e.Reason, `role "root" lists 65 key ids`) {
		t.Fatalf("a root role of %d key ids: %v", MaxRoleKeyIDs+1, e)
	}
}

func TestDelegationWithTooManyKeyIDsIsRefused(t *testing.T) {
	ids := make([]string, MaxRoleKeyIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"%064x"`, i)
	}
	raw := `{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{},` +
		`"delegations":{"keys":{},"roles":[{"name":"acme-gw","keyids":[` + strings.Join(ids, ",") + `],"threshold":1,"terminating":false,"paths":["acme-gw/*"]}]}},"signatures":[]}`
	if _, e := decodeTargets([]byte(raw), "targets.json"); e == nil || e.Code != CodeTooLarge || !strings.Contains(e.Reason, `role "acme-gw" lists 65 key ids`) {
		t.Fatalf("got %v", e)
	}
}
