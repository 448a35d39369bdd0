package app

import (
	"strings"
	"testing"
)

// Roots with a null key crashed go-tuf inside `trust add`: one whose root role names the
// null key, and a self-signed one that lists an unused null key beside its real ones.
func hostileRoots(t testing.TB) map[string][]byte {
	good := string(testRoot(t, "acme", true))
	unused := strings.Replace(good, `"keys": {`, `"keys": {"0000": null, `, 1)
	return map[string][]byte{
		"null key named by the root role": []byte(`{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2036-01-01T00:00:00Z","consistent_snapshot":true,` +
			`"keys":{"a":null},"roles":{"root":{"keyids":["a"],"threshold":1},"targets":{"keyids":["a"],"threshold":1},"snapshot":{"keyids":["a"],"threshold":1},"timestamp":{"keyids":["a"],"threshold":1}}},` +
			`"signatures":[{"keyid":"a","sig":"00"}]}`),
		"unused null key in a self-signed root": []byte(unused),
	}
}

func TestTrustAddRefusesRootsWithNullKeys(t *testing.T) {
	for name, root := range hostileRoots(t) {
		if !strings.Contains(string(root), "null") {
			t.Fatalf("%s: the hostile root holds no null key:\n%s", name, root)
		}
		if _, err := InspectRoot(root, "acme"); err == nil || !strings.Contains(err.Error(), "null") {
			t.Errorf("%s: %v; want a refusal naming the null key", name, err)
		}
		store, _ := OpenTrustStore(t.TempDir())
		if err := store.Add("acme", root); err == nil {
			t.Errorf("%s: pinned", name)
		}
	}
}

// trust add reads a root.json from anywhere: inspecting it must never panic.
func FuzzInspectRoot(f *testing.F) {
	f.Add(testRoot(f, "acme", true), "")
	f.Add([]byte(`{}`), "x")
	for _, root := range hostileRoots(f) {
		f.Add(root, "acme")
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if s, err := InspectRoot(data, name); err == nil && (s.Version < 1 || len(s.Keys) == 0) {
			t.Fatalf("accepted a root without version or keys: %+v", s)
		}
	})
}
