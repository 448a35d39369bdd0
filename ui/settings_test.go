//go:build cgo && unix

package ui

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/app"
)

// A technician pins the vendor's root after comparing its fingerprints, the bundle that
// was refused verifies, and removing the root makes it refused again.
func TestImportARootAfterItsFingerprintsThenRemoveIt(t *testing.T) {
	h := newHarness(t, false, 0, Options{})
	bundle, _ := filepath.Abs(corpus + "good_basic.fwb")
	h.st.OpenBundle(bundle)
	h.waitText("Not trusted")
	root, err := os.ReadFile(corpus + "root.json")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := app.InspectRoot(root, "")
	if err != nil {
		t.Fatal(err)
	}
	h.nav("settings")
	h.waitText("No roots are pinned")
	// What the file dialog hands over after the person picked root.json.
	h.sh.confirmRoot(corpus+"root.json", root, func() {})
	h.q.drain()
	h.waitText("Pin it only if these fingerprints match what the vendor published")
	h.waitText(sum.Keys[0].Fingerprint)
	h.tap("They match: pin it")
	h.waitText("Pinned the trust root")
	h.waitFor("the bundle to verify", func() bool { return h.st.Verified() != nil })
	h.nav("settings")
	h.waitText("Remove")
	h.tap("Remove")
	h.waitText("Bundles signed under")
	h.tap("Yes")
	h.waitFor("the bundle to be refused again", func() bool { b := h.st.bundle(); return b != nil && !b.Verifying && b.Verified == nil })
	store, _ := app.OpenTrustStore(h.st.Home())
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("roots after remove: %+v", list)
	}
}
