//go:build cgo && unix

package ui

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/app"
)

const corpus = "../verify/testdata/"

func TestDemoFlowOpenBundlePickDeviceUpdateSeeSuccess(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	h.waitText("Trusted")
	if !h.shows("fieldflash-demo") {
		t.Fatal("the bundle card does not name the vendor")
	}
	h.nav("devices")
	h.waitDevicesKnown()
	h.waitText("the bundle fits: 1.0.0 to 1.1.0")
	h.check(app.SimHardwareSMP)
	h.nav("update")
	h.waitText("for 1 device(s)")
	h.tap("Update")
	h.waitText("Updated: the device runs 1.1.0")
	if got := h.demo.Devices[0].Running(); got != "1.1.0" {
		t.Fatalf("the SMP device runs %s", got)
	}
	if got := h.demo.Devices[1].Running(); got != "1.0.0" {
		t.Fatalf("the YMODEM device was not picked but runs %s", got)
	}
	h.waitText("1 passed, 0 failed")
	// History reads the journal of what just happened.
	h.nav("history")
	h.waitText("confirmed")
}

func TestPulledCableShowsWaitingAndResumesByItself(t *testing.T) {
	h := newHarness(t, true, 115200, Options{})
	h.waitDevicesKnown()
	smp := h.demo.Devices[0].Path()
	h.st.Toggle(smp, true)
	h.nav("update")
	h.tap("Update")
	h.waitFor("12 KiB on the device", func() bool { j := h.job(smp); return j != nil && j.Bytes >= 12<<10 })
	h.tap("Pull the cable (demo)")
	h.waitText("Waiting for the device")
	h.waitText("Updated: the device runs 1.1.0")
	res := h.job(smp).Result
	if len(res.Resumes) < 2 || res.Resumes[len(res.Resumes)-1] < 8<<10 {
		t.Fatalf("resume offsets %v: want the transfer to continue where the device stopped", res.Resumes)
	}
	if st := h.demo.Devices[0].Stats(); st.Disconnects != 1 {
		t.Fatalf("disconnects %d", st.Disconnects)
	}
	// The throughput graph shows the transfer and the drop while the cable was out.
	rates := h.job(smp).Rates
	if len(rates) < 8 || !slices.Contains(rates, 0) || slices.Max(rates) <= 0 {
		t.Fatalf("graph samples %v: want the rate, a drop to 0 during the pull, and the rate again", rates)
	}
}

func TestRefusedBundleSaysWhyAndWhatToDo(t *testing.T) {
	h := newHarness(t, false, 0, Options{})
	root, err := os.ReadFile(corpus + "root.json")
	if err != nil {
		t.Fatal(err)
	}
	store, err := app.OpenTrustStore(h.st.Home())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("acme", root); err != nil {
		t.Fatal(err)
	}
	if err := h.st.ReopenSession(); err != nil {
		t.Fatal(err)
	}
	h.st.OpenBundle(corpus + "fail_tampered_payload.fwb")
	h.waitText("Not trusted")
	for _, want := range []string{"Why", "What to do", "Nothing from this bundle can be flashed"} {
		if !h.shows(want) {
			t.Errorf("the refusal lacks %q", want)
		}
	}
	h.nav("update")
	h.waitText("Open a trusted bundle first")
	if h.button("Update") != nil {
		t.Fatal("Update is enabled with a refused bundle")
	}
	// The good bundle of the same vendor verifies, dropped onto the window.
	abs, _ := filepath.Abs(corpus + "good_basic.fwb")
	h.st.OpenBundle(abs)
	h.nav("bundle")
	h.waitText("Trusted")
}

func TestFailureEndsInTheRecoveryWizardWhichBringsTheDeviceBack(t *testing.T) {
	h := newHarness(t, true, 115200, Options{Retry: app.RetryPolicy{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond, Tries: 2}})
	h.waitDevicesKnown()
	dev := h.demo.Devices[0]
	h.st.Toggle(dev.Path(), true)
	h.nav("update")
	h.tap("Update")
	h.waitFor("12 KiB on the device", func() bool { j := h.job(dev.Path()); return j != nil && j.Bytes >= 12<<10 })
	dev.PullCable(0) // out for good: the update gives up
	h.waitText("The device stopped during transfer")
	h.waitText("Device safe: Safe: the device is still on its old image (1.0.0)")
	h.tap("Open the recovery wizard")
	if h.sh.Current() != "recovery" {
		t.Fatalf("the wizard is not shown: %s", h.sh.Current())
	}
	h.waitText("Hold BOOT, plug in the cable, then press Next")
	time.Sleep(1500 * time.Millisecond) // the wizard keeps asking while nothing answers
	h.q.drain()
	if !h.shows("Hold BOOT") {
		t.Fatal("the wizard moved on while the cable was out")
	}
	if err := dev.PlugCable(); err != nil {
		t.Fatal(err)
	}
	h.waitText("The device answers") // noticed by itself: nobody pressed Next
	h.tap("Put the firmware on it")
	h.waitText("The device is back")
	if got := dev.Running(); got != "1.1.0" {
		t.Fatalf("after recovery the device runs %s", got)
	}
}

func TestTwoDevicesAtOnceOneFailsThenRetryTheFailedOnes(t *testing.T) {
	h := newHarness(t, true, 115200, Options{Retry: app.RetryPolicy{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond, Tries: 2}})
	h.waitDevicesKnown()
	smp, ym := h.demo.Devices[0], h.demo.Devices[1]
	h.nav("devices")
	h.tap("Pick every device the bundle fits")
	h.nav("update")
	h.tap("Update 2 devices")
	h.waitFor("8 KiB on the YMODEM device", func() bool { j := h.job(ym.Path()); return j != nil && j.Bytes >= 8<<10 })
	ym.PullCable(0)
	h.waitText("1 passed, 1 failed")
	if smp.Running() != "1.1.0" || ym.Running() != "1.0.0" {
		t.Fatalf("after the first round: smp %s, ymodem %s", smp.Running(), ym.Running())
	}
	if err := ym.PlugCable(); err != nil {
		t.Fatal(err)
	}
	h.tap("Retry the failed ones")
	h.waitText("2 passed, 0 failed")
	if ym.Running() != "1.1.0" {
		t.Fatalf("after the retry the YMODEM device runs %s", ym.Running())
	}
}

func TestSimpleModeIsOneDeviceOneButton(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	set := h.st.Settings
	set.Mode = app.ModeSimple
	if err := h.st.SaveSettings(set); err != nil {
		t.Fatal(err)
	}
	h.q.drain()
	if h.sh.Current() != "simple" {
		t.Fatalf("simple mode shows %s", h.sh.Current())
	}
	h.waitText("A genuine update from fieldflash-demo")
	h.waitText("Found your device")
	h.tap("Update my device")
	h.waitText("Done.")
	if a, b := h.demo.Devices[0].Running(), h.demo.Devices[1].Running(); (a == "1.1.0") == (b == "1.1.0") {
		t.Fatalf("one device, one button: the devices run %s and %s; want exactly one updated", a, b)
	}
}

// Every screen fits a 1366x768 screen at 1.5x scale (910x512 logical pixels): long
// content scrolls instead of pushing the window past the screen.
func TestEveryScreenFitsA1366x768ScreenAt150Percent(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	h.waitDevicesKnown()
	for _, mode := range []string{app.ModeTechnician, app.ModeSimple} {
		h.sh.setMode(mode)
		for _, s := range h.sh.shown {
			h.sh.Show(s.ID)
			h.q.drain()
			min := h.w.Content().MinSize()
			if min.Width > 1366/1.5 || min.Height > 768/1.5 {
				t.Errorf("%s (%s) needs %v, more than 910x512", s.ID, mode, min)
			}
		}
	}
}

// A stock Zephyr board does not say which hardware it is (os info is off by default):
// the update screen asks for the id on its label, offers the bundle's, and with it the
// board fits and updates.
func TestStockZephyrAsksForTheHardwareIdOffItsLabelAndUpdates(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	h.waitText("Trusted")
	dev, err := app.StartVirtualDevice(app.VirtualConfig{Protocol: "smp", Profile: "zephyr", Baud: 115200,
		State: filepath.Join(t.TempDir(), "zephyr.flash"), Symlink: filepath.Join(t.TempDir(), "ttyZephyr")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	withdraw, err := dev.Announce("stock Zephyr board")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { withdraw() })
	h.nav("update")
	h.waitText("does not say which board it is")
	h.choose(app.SimHardwareSMP)
	h.waitFor("the Zephyr board to fit", func() bool {
		for _, r := range h.st.Rows() {
			if r.Port.Path == dev.Path() {
				return r.Fit != nil && r.Fit.OK
			}
		}
		return false
	})
	h.nav("devices")
	h.check("stock Zephyr board")
	h.nav("update")
	h.tap("Update")
	h.waitText("Updated: the device runs 1.1.0")
	if got := dev.Running(); got != "1.1.0" {
		t.Fatalf("the stock Zephyr board runs %s", got)
	}
}
