//go:build cgo && unix

package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

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
	// root.json is a standard TUF name and this root names no repository: pinning it
	// unnamed is refused with the next step, and a name the person types is kept as typed.
	h.tap("They match: pin it")
	h.waitText("type the vendor's repository name")
	h.sh.confirmRoot(corpus+"root.json", root, func() {})
	h.q.drain()
	h.waitText("Pin it only if these fingerprints match what the vendor published")
	h.typeInto("the vendor's repository name", "Acme Field Devices")
	h.tap("They match: pin it")
	h.waitText("Pinned the trust root Acme Field Devices")
	if store, _ := app.OpenTrustStore(h.st.Home()); store != nil {
		if list, _ := store.List(); len(list) != 1 || list[0].Name != "Acme Field Devices" {
			t.Fatalf("pinned roots %+v; want one, named as typed", list)
		}
	}
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

// typeInto types text into the entry whose placeholder contains hint.
func (h *harness) typeInto(hint, text string) {
	h.t.Helper()
	var e *widget.Entry
	h.waitFor("an entry “"+hint+"”", func() bool {
		for _, o := range h.objects() {
			if x, ok := o.(*widget.Entry); ok && strings.Contains(x.PlaceHolder, hint) && !x.Disabled() {
				e = x
				return true
			}
		}
		return false
	})
	test.Type(e, text)
	h.q.drain()
}
