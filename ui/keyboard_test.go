//go:build cgo && unix

package ui

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

// A technician without a mouse: Tab to the update screen's primary button, Enter starts
// the update, Escape cancels it; Tab to Resume and Enter continues where it stopped.
// (Ctrl+1…9 between screens are pressed on the real window in TestRealWindow….)
func TestKeyboardAloneStartsCancelsAndResumesAnUpdate(t *testing.T) {
	h := newHarness(t, true, 115200, Options{})
	h.waitDevicesKnown()
	smp := h.demo.Devices[0].Path()
	h.st.Toggle(smp, true)
	c := h.w.Canvas()
	h.nav("update")
	focusButton(t, h, "Update")
	c.Focused().TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.q.drain()
	h.waitFor("the transfer to start", func() bool { j := h.job(smp); return j != nil && j.Bytes > 4<<10 })
	c.Unfocus()
	c.OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
	h.waitText("Stopped during transfer")
	h.waitText("Device safe")
	focusButton(t, h, "Resume")
	c.Focused().TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitText("Updated: the device runs 1.1.0")
	if r := h.job(smp).Result; r.Outcome.ResumedFrom == 0 {
		t.Fatalf("the resumed update started from byte 0: %+v", r.Outcome)
	}
}

// focusButton presses Tab until the button with label has the focus.
func focusButton(t *testing.T, h *harness, label string) {
	t.Helper()
	c := h.w.Canvas()
	for i := 0; i < 60; i++ {
		test.FocusNext(c)
		if b, ok := c.Focused().(*Button); ok && strings.Contains(b.Text, label) && !isNav(h, b) {
			return
		}
	}
	t.Fatalf("Tab never reached the button %q", label)
}

// Text from a device or a bundle is shown as its bytes say, never acted on: a right-to-left
// override in a hardware id cannot make "exe.png" read as "gnp.exe".
func TestHostileDeviceTextIsEscapedOnScreen(t *testing.T) {
	h := newHarness(t, false, 0, Options{})
	hostile := "evil\u202egnp.exe\x1b[2J"
	dev, err := app.StartVirtualDevice(app.VirtualConfig{Protocol: "ymodem", Hardware: hostile, State: filepath.Join(t.TempDir(), "ym")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	withdraw, err := dev.Announce(app.AnnounceName("ymodem"))
	if err != nil {
		t.Fatal(err)
	}
	defer withdraw()
	h.nav("devices")
	h.waitText(`evil\u202egnp.exe\x1b[2J`)
	for _, s := range h.texts() {
		if strings.ContainsAny(s, "\u202e\x1b") {
			t.Fatalf("raw control text on screen: %q", s)
		}
	}
}

func TestLightAndDarkThemes(t *testing.T) {
	h := newHarness(t, false, 0, Options{})
	h.nav("settings")
	colors := map[string]string{}
	for _, name := range []string{"Light", "Dark"} {
		h.tapRadio(name)
		bg := theme.Color(theme.ColorNameBackground)
		r, g, b, _ := bg.RGBA()
		colors[name] = strings.Join([]string{itoa16(r), itoa16(g), itoa16(b)}, ",")
		if h.st.Settings.Theme != strings.ToLower(name) {
			t.Fatalf("theme %s not kept: %q", name, h.st.Settings.Theme)
		}
	}
	if colors["Light"] == colors["Dark"] {
		t.Fatalf("light and dark draw the same background %s", colors["Light"])
	}
	saved, err := app.LoadSettings(h.st.Home())
	if err != nil || saved.Theme != app.ThemeDark {
		t.Fatalf("saved settings %+v %v", saved, err)
	}
}

func isNav(h *harness, b *Button) bool {
	for _, n := range h.sh.navs {
		if n == b {
			return true
		}
	}
	return false
}

func itoa16(v uint32) string { return strconv.Itoa(int(v >> 8)) }

// tapRadio picks an option of a radio group, as a tap on it does.
func (h *harness) tapRadio(option string) {
	h.t.Helper()
	for _, o := range h.objects() {
		if r, ok := o.(*widget.RadioGroup); ok && slices.Contains(r.Options, option) {
			r.SetSelected(option)
			h.q.drain()
			return
		}
	}
	h.t.Fatalf("no radio option %q", option)
}
