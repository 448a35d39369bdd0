//go:build cgo && unix

package ui

// USB DFU devices in the window. Below the window the app layer's real USB path runs
// (list, fit, flash, recover) against the sim/dfudev twins on a virtual bus
// (app.StartVirtualUSB), which stands in for this machine's USB: the real DFU requests and
// state machines, below the USB boundary that the lab (sim/usblab) crosses for real
// through a Linux gadget, libusb and gousb. The bundle is signed by the test vendor's
// test-only keys and verified like any other.

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/internal/testvendor"
)

type usbHarness struct {
	*harness
	bus *app.VirtualUSB
	ven *testvendor.Vendor
}

// newUSBHarness opens the window with a virtual USB bus and the test vendor's bundle open
// and trusted.
func newUSBHarness(t *testing.T) *usbHarness {
	t.Helper()
	bus := app.StartVirtualUSB()
	t.Cleanup(bus.Close)
	h := newHarness(t, false, 0, Options{DepartWait: 300 * time.Millisecond,
		Retry: app.RetryPolicy{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond, Tries: 2}})
	ven, err := testvendor.Make(t.TempDir(), "2.0.0", 2)
	if err != nil {
		t.Fatal(err)
	}
	store, err := app.OpenTrustStore(h.st.Home())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add(testvendor.Repository, ven.Root); err != nil {
		t.Fatal(err)
	}
	if err := h.st.ReopenSession(); err != nil {
		t.Fatal(err)
	}
	h.st.OpenBundle(ven.Bundle)
	h.waitText("Trusted")
	return &usbHarness{harness: h, bus: bus, ven: ven}
}

func (u *usbHarness) add(cfg app.VirtualUSBConfig) *app.VirtualDFU {
	u.t.Helper()
	d, err := u.bus.Add(cfg)
	if err != nil {
		u.t.Fatal(err)
	}
	return d
}

// choose picks option in the select box that offers it.
func (h *harness) choose(option string) {
	h.t.Helper()
	var sel *widget.Select
	h.waitFor("a choice “"+option+"”", func() bool {
		for _, o := range h.objects() {
			if s, ok := o.(*widget.Select); ok {
				for _, opt := range s.Options {
					if opt == option {
						sel = s
						return true
					}
				}
			}
		}
		return false
	})
	sel.SetSelected(option)
	h.q.drain()
}

func TestUSBDevicesShowLiveWithWhatTheyAreAndWhetherTheBundleFits(t *testing.T) {
	h := newUSBHarness(t)
	h.nav("devices")
	stm := h.add(app.VirtualUSBConfig{Profile: app.VirtualSTM32})
	h.waitText("STM32  BOOTLOADER")
	h.waitText("DFU mode · DfuSe (1.1a) · transfer size 2048")
	h.waitText("alternate setting 0: Internal Flash 0x08000000: 4×16 KiB rew, 1×64 KiB rew, 7×128 KiB rew")
	h.waitText("✔ the bundle fits: it puts 2.0.0 (acme-stm32/app-2.0.0.dfu) on it")
	// New USB devices are asked by themselves, gently: their DFU state, nothing written.
	h.waitText("DFU mode: the bootloader waits for an image")

	h.add(app.VirtualUSBConfig{Profile: app.VirtualZephyr, Running: "1.0.0"})
	h.waitText("USB-DEV")
	h.waitText("run-time (application)")
	h.waitText("the application runs and offers DFU (run-time mode): nothing is stuck")
	h.waitText("(acme-zephyr/app-2.0.0.bin)")

	// A device for which the bundle has nothing: listed, and said not to fit.
	h.add(app.VirtualUSBConfig{Profile: app.VirtualZephyr, Serial: "ODD1", Running: "1.0.0"})
	h.waitFor("three USB rows", func() bool { return len(h.st.Rows()) >= 3 })

	stm.PullCable(0)
	h.waitFor("the STM32 row to go", func() bool { return !h.shows("STM32  BOOTLOADER") })
	stm.PlugCable()
	h.waitText("STM32  BOOTLOADER")
}

func TestUpdateAUSBDfuSeAUSBZephyrAndASerialDeviceAtOnce(t *testing.T) {
	h := newUSBHarness(t)
	smp, err := app.StartVirtualDevice(app.VirtualConfig{Protocol: "smp", State: filepath.Join(t.TempDir(), "smp.flash"), Symlink: filepath.Join(t.TempDir(), "ttySIM-smp")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(smp.Close)
	withdraw, err := smp.Announce("bench SMP device")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { withdraw() })
	stm := h.add(app.VirtualUSBConfig{Profile: app.VirtualSTM32})
	z := h.add(app.VirtualUSBConfig{Profile: app.VirtualZephyr, Running: "1.0.0", Reboot: true, Upload: true})

	h.nav("devices")
	h.waitFor("three devices the bundle fits", func() bool {
		n := 0
		for _, r := range h.st.Rows() {
			if r.Fit != nil && r.Fit.OK {
				n++
			}
		}
		return n == 3
	})
	h.tap("Pick every device the bundle fits")
	h.waitText("3 devices picked")
	h.nav("update")
	h.tap("Update 3 devices")
	h.waitText("3 passed, 0 failed")
	if h.shows("failed during") {
		t.Fatalf("the window shows a failure:\n%s", strings.Join(h.texts(), "\n"))
	}
	for i, addr := range []uint32{testvendor.STM32Address0, testvendor.STM32Address1} {
		got, _ := stm.Memory(addr, len(h.ven.STM32Elements[i]))
		if !bytes.Equal(got, h.ven.STM32Elements[i]) {
			t.Errorf("STM32 element %d differs", i)
		}
	}
	if stm.Running() != "application" || z.Running() != "2.0.0" || smp.Running() != "2.0.0" {
		t.Fatalf("after the update: STM32 %q, Zephyr %q, SMP %q", stm.Running(), z.Running(), smp.Running())
	}
	// Each card says where its device is and how the image was checked.
	for _, want := range []string{"on USB 0483:df11 (port 9-1)", "on USB 2fe3:0100 (port 9-2)", "Updated: the device runs 2.0.0"} {
		if !h.shows(want) {
			t.Errorf("the update screen lacks %q", want)
		}
	}
}

func TestRecoveryWizardBringsBackAZephyrWhoseApplicationDoesNotBoot(t *testing.T) {
	h := newUSBHarness(t)
	z := h.add(app.VirtualUSBConfig{Profile: app.VirtualZephyr, Upload: true, Reboot: true})
	h.nav("recovery")
	h.waitText("Which port is the device on?")
	h.tap("Next")
	h.waitText("The device answers") // noticed by itself on the USB bus
	h.waitText("DFU mode: the bootloader waits for an image")
	// In DFU mode the board enumerates as 2fe3:ffff; the bundle names its application's
	// 2fe3:0100: the person reads the board's label.
	h.waitText("Read the hardware id from the board's label")
	h.choose(testvendor.HardwareZephyr)
	h.tap("Put the firmware on it")
	h.waitText("The device is back")
	if z.Running() != "2.0.0" {
		t.Fatalf("after recovery MCUboot boots %q", z.Running())
	}
}

func TestAUSBUpdateCutOffForGoodIsResumedFromTheRecoveryWizard(t *testing.T) {
	h := newUSBHarness(t)
	stm := h.add(app.VirtualUSBConfig{Profile: app.VirtualSTM32})
	h.nav("devices")
	h.check("STM32  BOOTLOADER")
	h.nav("update")
	stm.PullCable(30000) // out for good at 30 000 bytes: the update gives up
	h.tap("Update")
	h.waitText("The device stopped during transfer")
	h.tap("Open the recovery wizard")
	h.waitText("Hold BOOT, plug in the cable, then press Next")
	stm.PlugCable()
	h.waitText("The device answers")
	h.waitText("in the middle of a download that stopped")
	h.tap("Put the firmware on it")
	h.waitText("The device is back")
	for i, addr := range []uint32{testvendor.STM32Address0, testvendor.STM32Address1} {
		got, _ := stm.Memory(addr, len(h.ven.STM32Elements[i]))
		if !bytes.Equal(got, h.ven.STM32Elements[i]) {
			t.Errorf("STM32 element %d differs", i)
		}
	}
	j := h.sh.wizard.batch.Jobs[0]
	if res := j.Result; res == nil || len(res.Resumes) == 0 || res.Resumes[0] < 16384 {
		t.Fatalf("the recovery did not resume at the first page not yet written: %+v", res)
	}
	_ = test.NewApp
}
