package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// A bundle for one product need not carry another product's role. A role this machine
// saved from an earlier bundle that the new snapshot has moved past, and that the new
// bundle does not carry, is not on the way to any of its payloads: it must not block it.
func TestSavedRoleThatALaterBundleDoesNotCarryDoesNotBlockIt(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	r.delegate("acme-sensor", []string{"acme-sensor/*"}, 1, false, fxNewKey(t, "acme-sensor-a"))
	r.addTarget("acme-gw", "acme-gw/app-1.0.0.bin", []byte("gateway 1.0.0"), fxMeta())
	sensor := fxMeta()
	sensor.HardwareIDs = []string{"acme-sensor-r1"}
	r.addTarget("acme-sensor", "acme-sensor/app-1.0.0.bin", []byte("sensor 1.0.0"), sensor)
	st := NewMemoryState()
	fxAccept(t, r.write("both.fwb"), r.opts(st))

	// The next release changes both products; the gateway's bundle carries its own role only.
	r.release()
	r.addTarget("acme-sensor", "acme-sensor/app-1.1.0.bin", []byte("sensor 1.1.0"), sensor)
	r.addTarget("acme-gw", "acme-gw/app-1.1.0.bin", []byte("gateway 1.1.0"), fxMeta())
	c := r.contents()
	delete(c.Delegated, "acme-sensor")
	var payloads = c.Payloads[:0]
	for _, p := range c.Payloads {
		if p.SHA256 == fxSHA(t, []byte("gateway 1.1.0")) {
			payloads = append(payloads, p)
		}
	}
	c.Payloads = payloads
	// A payload that does need the role the bundle left out is still refused, by name.
	withSensor := *c
	for _, p := range r.contents().Payloads {
		if p.SHA256 == fxSHA(t, []byte("sensor 1.1.0")) {
			withSensor.Payloads = append(append([]bundle.PayloadSource{}, c.Payloads...), p)
		}
	}
	e := fxRefusal(t, fxWrite(t, "sensor-without-its-role.fwb", &withSensor), r.opts(st), CodePayload)
	fxSays(t, e, "it does not carry role acme-sensor", "carries every delegated role")

	v := fxAccept(t, fxWrite(t, "gateway-only.fwb", c), r.opts(st))
	if len(v.Targets) != 1 || v.Targets[0].Path != "acme-gw/app-1.1.0.bin" {
		t.Fatalf("targets %+v", v.Targets)
	}
	// The stale sensor role is not kept as if it were current.
	saved, _ := st.Load(r.pinned().StateKey())
	if _, ok := saved.Targets["acme-sensor"]; ok {
		t.Error("the saved acme-sensor v1, which the new snapshot moved past, is still kept")
	}
	// The sensor's own next bundle still verifies on this machine.
	fxAccept(t, r.write("sensor.fwb"), r.opts(st))
}

func fxSHA(t *testing.T, b []byte) string {
	t.Helper()
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
