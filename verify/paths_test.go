package verify

import "testing"

// One image for two hardware revisions, signed under two paths: the bundle carries it once,
// and each revision finds its own signed target.
func TestOneImageSignedUnderTwoPathsFitsBothRevisions(t *testing.T) {
	r := fxNewRepo(t)
	image := []byte("one image for both gateway revisions")
	r1, r2 := fxMeta(), fxMeta()
	r1.HardwareIDs, r2.HardwareIDs = []string{"acme-gw-r1"}, []string{"acme-gw-r2"}
	r.addTarget("targets", "acme-gw-r1/app-2.0.0.bin", image, r1)
	r.addTarget("targets", "acme-gw-r2/app-2.0.0.bin", image, r2)
	path := r.write("two-paths.fwb")

	for _, hw := range []string{"acme-gw-r1", "acme-gw-r2"} {
		opts := r.opts(nil)
		opts.Hardware = hw
		v := fxAccept(t, path, opts)
		if len(v.Targets) != 1 || v.Targets[0].Path != hw+"/app-2.0.0.bin" || v.Targets[0].Meta.HardwareIDs[0] != hw {
			t.Errorf("for %s: targets %+v, want only its own path", hw, v.Targets)
		}
	}
	v := fxAccept(t, path, r.opts(nil))
	if len(v.Targets) != 2 || v.Targets[0].Offset != v.Targets[1].Offset {
		t.Errorf("without a device: %+v, want both paths over the one payload", v.Targets)
	}
	opts := r.opts(nil)
	opts.Hardware = "acme-gw-r3"
	e := fxRefusal(t, path, opts, CodeHardware)
	fxSays(t, e, "made for acme-gw-r1; acme-gw-r2, not for this device's hardware acme-gw-r3")
}

// Every signed target that names the payload must agree with what the image says of
// itself: one that contradicts it is refused even if another fits.
func TestEveryPathOfAPayloadIsChecked(t *testing.T) {
	r := fxNewRepo(t)
	image := []byte("raw image")
	good, bad := fxMeta(), fxMeta()
	bad.HardwareIDs = []string{"acme-gw-r2"}
	bad.Version = "not semver"
	r.addTarget("targets", "acme-gw-r1/app.bin", image, good)
	r.addTarget("targets", "acme-gw-r2/app.bin", image, bad)
	fxRefusal(t, r.write("one-bad-path.fwb"), r.opts(nil), CodeMetadata)
}

// A release withdrawn from a delegated role is refused naming that role's newest version,
// not the top-level targets that never listed it.
func TestWithdrawnFromADelegatedRoleNamesThatRole(t *testing.T) {
	r := fxNewRepo(t)
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, fxNewKey(t, "acme-gw-a"))
	old := r.addTarget("acme-gw", "acme-gw/app-1.0.0.bin", []byte("1.0.0"), fxMeta())
	oldBundle := r.write("1.0.0.fwb")
	r.release()
	delete(r.delegated["acme-gw"].Signed.Targets, "acme-gw/app-1.0.0.bin")
	delete(r.payloads, old)
	r.addTarget("acme-gw", "acme-gw/app-1.1.0.bin", []byte("1.1.0"), fxMeta())
	st := NewMemoryState()
	fxAccept(t, r.write("1.1.0.fwb"), r.opts(st))
	e := fxRefusal(t, oldBundle, r.opts(st), CodeWithdrawn)
	fxSays(t, e, "its own metadata (acme-gw v1) name it app 1.0.0", "the newest metadata trusted here (acme-gw v2) no longer list acme-gw/app-1.0.0.bin")
}
