package verify

import (
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// hashBins makes targets delegate by path_hash_prefixes: one role per listed hex prefix.
func hashBins(t *testing.T, r *fxRepo, prefixes ...string) {
	for _, p := range prefixes {
		name := "bin-" + p
		r.delegate(name, nil, 1, false, fxNewKey(t, name))
		d := r.targets.Signed.Delegations
		d.Roles[len(d.Roles)-1].PathHashPrefixes = []string{p}
	}
}

// The TUF spec's hash bins: a path belongs to the role whose path_hash_prefixes start the
// hex SHA-256 of the path. The vectors were computed outside Go (`printf %s PATH |
// sha256sum`, and Python's hashlib for the base64 form go-tuf v2.4.2 wrongly compares):
//
//	acme-gw/app-1.bin  hex d5c32c46e678…  base64url 1cMsRuZ44pvd…
var (
	binPath      = "acme-gw/app-1.bin"
	binHex       = "d5"  // the bin the spec puts it in
	binBase64Bin = "1"   // the bin go-tuf v2.4.2 would put it in
	binHexFull   = "d5c" // a longer prefix of the same hex digest
)

func TestHashBinRepositoryFollowsTheSpecsHexDigest(t *testing.T) {
	r := fxNewRepo(t)
	hashBins(t, r, binHex, binBase64Bin)
	r.addTarget("bin-"+binHex, binPath, []byte("app in its own bin"), fxMeta())
	v := fxAccept(t, r.write("hash-bins.fwb"), r.opts(nil))
	if v.Targets[0].Role != "bin-"+binHex {
		t.Errorf("governed by %q, want bin-%s", v.Targets[0].Role, binHex)
	}

	r2 := fxNewRepo(t)
	hashBins(t, r2, binHexFull)
	r2.addTarget("bin-"+binHexFull, binPath, []byte("app in its own bin"), fxMeta())
	fxAccept(t, r2.write("longer-prefix.fwb"), r2.opts(nil))
}

// A bin's key cannot sign a path of another bin, even the one the base64 form of the
// path's hash would name.
func TestWrongHashBinCannotSignAPath(t *testing.T) {
	r := fxNewRepo(t)
	hashBins(t, r, binHex, binBase64Bin)
	r.addTarget("bin-"+binBase64Bin, binPath, []byte("signed by the wrong bin"), fxMeta())
	e := fxRefusal(t, r.write("wrong-bin.fwb"), r.opts(nil), CodePayload)
	fxSays(t, e, "role bin-1 lists it as "+binPath)
}

// The spec allows paths or path_hash_prefixes in a delegation, not both (go-tuf refuses
// to write such a file but reads one).
func TestDelegationWithBothPathsAndHashPrefixesIsRefused(t *testing.T) {
	raw := `{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{},` +
		`"delegations":{"keys":{},"roles":[{"name":"p","keyids":[],"threshold":1,"terminating":false,"paths":["acme-gw/*"],"path_hash_prefixes":["d5"]}]}},"signatures":[]}`
	_, e := decodeTargets([]byte(raw), "targets.json")
	if e == nil || e.Code != CodeMetadata || !strings.Contains(e.Reason, "both paths and path_hash_prefixes") {
		t.Fatalf("got %v", e)
	}
}

// confine sets the hardware ids a delegation allows.
func confine(dr *metadata.DelegatedRole, hw ...any) {
	if dr.UnrecognizedFields == nil {
		dr.UnrecognizedFields = map[string]any{}
	}
	dr.UnrecognizedFields[HardwareField] = hw
}

// A product's delegated key signs for its own hardware only: targets confines acme-gw to
// the gateway boards, so a target under acme-gw/* for a sensor board is refused, whatever
// hardware the device says it is.
func TestDelegatedProductKeyCannotSignForAnotherProductsHardware(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	confine(&r.targets.Signed.Delegations.Roles[0], "acme-gw-r1", "acme-gw-r2")
	own := fxMeta()
	own.HardwareIDs = []string{"acme-gw-r1", "acme-gw-r2"}
	r.addTarget("acme-gw", "acme-gw/app.bin", []byte("gateway app"), own)
	fxAccept(t, r.write("own-hardware.fwb"), r.opts(nil))

	sensor := fxMeta()
	sensor.HardwareIDs = []string{"acme-sensor-r1"}
	r.addTarget("acme-gw", "acme-gw/sensor.bin", []byte("sensor app"), sensor)
	opts := r.opts(nil)
	opts.Hardware = "acme-sensor-r1"
	e := fxRefusal(t, r.write("other-hardware.fwb"), opts, CodePayload)
	fxSays(t, e, "role acme-gw signs it for hardware acme-sensor-r1", "targets delegates to acme-gw only hardware acme-gw-r1, acme-gw-r2")
}

// The confinement holds along the whole chain: a role two delegations down is bound by
// every delegator above it.
func TestHardwareConfinementHoldsAlongTheWholeChain(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	confine(&r.targets.Signed.Delegations.Roles[0], "acme-gw-r1")
	// acme-gw delegates its releases to a per-release role that it does not confine.
	rel := fxNewKey(t, "acme-gw-release")
	gw := r.delegated["acme-gw"]
	gw.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{rel.id: rel.key},
		Roles: []metadata.DelegatedRole{{Name: "acme-gw-7", KeyIDs: []string{rel.id}, Threshold: 1, Paths: []string{"acme-gw/*"}}}}
	r.delegated["acme-gw-7"] = metadata.Targets(fxExpires)
	r.signers["acme-gw-7"] = []fxKey{rel}
	sensor := fxMeta()
	sensor.HardwareIDs = []string{"acme-gw-r1", "acme-sensor-r1"}
	r.addTarget("acme-gw-7", "acme-gw/app-7.bin", []byte("release 7"), sensor)
	e := fxRefusal(t, r.write("chain.fwb"), r.opts(nil), CodePayload)
	fxSays(t, e, "role acme-gw-7 signs it for hardware acme-sensor-r1", "targets delegates to acme-gw (on the way to acme-gw-7) only hardware acme-gw-r1")

	sensor.HardwareIDs = []string{"acme-gw-r1"}
	r.addTarget("acme-gw-7", "acme-gw/app-7.bin", []byte("release 7"), sensor)
	fxAccept(t, r.write("chain-ok.fwb"), r.opts(nil))
}

func TestMalformedHardwareConfinementIsRefused(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	confine(&r.targets.Signed.Delegations.Roles[0], "acme-gw-r1", 7)
	r.addTarget("acme-gw", "acme-gw/app.bin", []byte("gateway app"), fxMeta())
	e := fxRefusal(t, r.write("bad-confinement.fwb"), r.opts(nil), CodeMetadata)
	if !strings.Contains(e.Reason, HardwareField) {
		t.Errorf("reason %q does not name %s", e.Reason, HardwareField)
	}
}

// Hash-bin (succinct) delegations confine hardware the same way: the field sits in
// succinct_roles and binds every bin.
func TestSuccinctBinsAreConfinedToHardware(t *testing.T) {
	for _, c := range []struct {
		hw   string
		want Code
	}{{"acme-gw-r1", ""}, {"acme-sensor-r1", CodePayload}} {
		r := fxNewRepo(t)
		k := fxNewKey(t, "bins")
		r.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{k.id: k.key},
			SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{k.id}, Threshold: 1, BitLength: 1, NamePrefix: "bin",
				UnrecognizedFields: map[string]any{HardwareField: []any{"acme-gw-r1"}}}}
		// sha256("acme-gw/app.bin") = b83f99…: its first bit is 1, so bin-1 (sha256sum).
		r.delegated["bin-1"] = metadata.Targets(fxExpires)
		r.signers["bin-1"] = []fxKey{k}
		m := fxMeta()
		m.HardwareIDs = []string{c.hw}
		r.addTarget("bin-1", "acme-gw/app.bin", []byte("binned app"), m)
		opts := r.opts(nil)
		opts.Hardware = c.hw
		if c.want == "" {
			fxAccept(t, r.write("bins.fwb"), opts)
			continue
		}
		e := fxRefusal(t, r.write("bins.fwb"), opts, c.want)
		fxSays(t, e, "role bin-1 signs it for hardware acme-sensor-r1", "only hardware acme-gw-r1")
	}
}
