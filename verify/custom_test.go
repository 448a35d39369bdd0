package verify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rawCustom lists content at path in targets with custom.fieldflash exactly as given.
func rawCustom(t *testing.T, r *fxRepo, path string, content []byte, fieldflash string) {
	t.Helper()
	tf, err := metadata.TargetFile().FromBytes(path, content, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(`{"fieldflash":` + fieldflash + `,"other-tool":{"anything":1}}`)
	tf.Custom = &raw
	r.targets.Signed.Targets[path] = tf
	r.payloads[fxSHA(t, content)] = content
}

// An outside implementer's typo must not silently drop a check, and anti-rollback is never
// left to a default: custom.fieldflash holds only known keys (or a vendor's own "x-" keys),
// and release_counter is required. Other tools' keys beside "fieldflash" are ignored.
func TestCustomMetadataHoldsOnlyKnownKeysAndAReleaseCounter(t *testing.T) {
	for _, c := range []struct {
		name, custom, says string
	}{
		{"missing release counter", `{"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app"}`, "release_counter is missing"},
		{"null release counter", `{"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":null}`, "release_counter is missing"},
		{"typo", `{"hardware_id":["acme-gw-r1"],"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":1}`, `unknown key "hardware_id"`},
		{"other case", `{"Hardware_IDs":["acme-gw-r2"],"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":1}`, `unknown key "Hardware_IDs"`},
		{"protocol typo", `{"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":1,"protocol":{"image-slot":1}}`, `unknown key "protocol.image-slot"`},
		{"requirement typo", `{"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":1,"requires":[{"component":"bootloader","versoin":">=1.0.0"}]}`, `unknown key "requires[].versoin"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := fxNewRepo(t)
			rawCustom(t, r, "acme-gw/app.bin", []byte("app"), c.custom)
			e := fxRefusal(t, r.write("custom.fwb"), r.opts(nil), CodeMetadata)
			if !strings.Contains(e.Reason, c.says) {
				t.Errorf("reason %q does not say %q", e.Reason, c.says)
			}
		})
	}
	r := fxNewRepo(t)
	rawCustom(t, r, "acme-gw/app.bin", []byte("app"), `{"hardware_ids":["acme-gw-r1"],"version":"1.0.0","component":"app","release_counter":0,"x-acme-build":"ci-4711"}`)
	if v := fxAccept(t, r.write("vendor-key.fwb"), r.opts(nil)); v.Targets[0].Meta.ReleaseCounter != 0 {
		t.Errorf("release counter %d", v.Targets[0].Meta.ReleaseCounter)
	}
}
