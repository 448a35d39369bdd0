package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/internal/testvendor"
)

// These tests run the app layer's USB path (list, fit, flash, recover) against the
// sim/dfudev twins on a virtual bus (StartVirtualUSB): the real DFU requests and state
// machines, below the USB boundary that the lab (sim/usblab) crosses for real through a
// Linux gadget, libusb and gousb. The bundle is signed by the test vendor's test-only keys
// and verified by the session like any other.

type usbField struct {
	s   *Session
	v   *Verified
	ven *testvendor.Vendor
	bus *VirtualUSB
}

func newUSBField(t *testing.T) *usbField {
	t.Helper()
	home := t.TempDir()
	t.Setenv(HomeEnv, home)
	ven, err := testvendor.Make(t.TempDir(), "2.0.0", 2)
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenTrustStore(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add(testvendor.Repository, ven.Root); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSession(false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(ven.Bundle, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := StartVirtualUSB()
	t.Cleanup(bus.Close)
	return &usbField{s: s, v: v, ven: ven, bus: bus}
}

func (f *usbField) add(t *testing.T, cfg VirtualUSBConfig) *VirtualDFU {
	t.Helper()
	d, err := f.bus.Add(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// text is every message of the events, one a line.
func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, ev := range e.all {
		if ev.Message != "" {
			s = append(s, string(ev.Kind)+" "+string(ev.Step)+": "+ev.Message)
		}
	}
	return strings.Join(s, "\n")
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRecoverUSBExplainsAnSTM32LeftInDFUErrorAndBringsItBack(t *testing.T) {
	f := newUSBField(t)
	stm := f.add(t, VirtualUSBConfig{Profile: VirtualSTM32})
	// Another tool asked for an upload block the bootloader does not have: the device
	// stalled it and sits in dfuERROR.
	c, err := stm.host.Open(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	c.ControlIn(ctxFor(t), dfu.ReqUpload, 1, make([]byte, 64))
	if stm.dev.State() != dfu.StateError {
		t.Fatalf("setting up: the twin is in %s", stm.dev.State())
	}

	rec, err := ProbeRecoveryUSB(ctxFor(t), "auto", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateDFUError || rec.DFU.Status != "errSTALLEDPKT" || !strings.Contains(rec.Text, "errSTALLEDPKT") ||
		!strings.Contains(rec.Text, "stalled an unexpected request") || !strings.Contains(rec.Next, "CLRSTATUS") {
		t.Fatalf("probe: %s / %s / %s / %+v", rec.State, rec.Text, rec.Next, rec.DFU)
	}
	if !strings.Contains(rec.Device(), "STM32  BOOTLOADER") || !strings.Contains(rec.Device(), "DfuSe") || rec.USBSpec != "0483:df11,325A36713137" {
		t.Errorf("device %q, spec %q", rec.Device(), rec.USBSpec)
	}
	if stm.dev.State() != dfu.StateError {
		t.Fatalf("the probe changed the device's state to %s", stm.dev.State())
	}

	var ev events
	res := f.s.Recover(ctxFor(t), rec, FlashRequest{Bundle: f.v, DepartWait: 300 * time.Millisecond}, ev.add)
	if res.Status != StatusOK {
		t.Fatalf("recover: %v %v\n%s", res.Status, res.Err, ev.text())
	}
	if !strings.Contains(ev.text(), "cleared with CLRSTATUS") || !strings.Contains(ev.text(), "read back all 49000 bytes") {
		t.Errorf("events:\n%s", ev.text())
	}
	for i, addr := range []uint32{testvendor.STM32Address0, testvendor.STM32Address1} {
		got, _ := stm.Memory(addr, len(f.ven.STM32Elements[i]))
		if !bytes.Equal(got, f.ven.STM32Elements[i]) {
			t.Errorf("element %d at 0x%08x differs", i, addr)
		}
	}
	if stm.Running() != "application" {
		t.Error("the STM32 did not leave its bootloader for the new application")
	}
	if res.Hardware != testvendor.HardwareSTM32 || res.Port != "usb 9-1" {
		t.Errorf("result hardware %q port %q", res.Hardware, res.Port)
	}
}

func TestRecoverUSBFlashesAZephyrWhoseApplicationDoesNotBoot(t *testing.T) {
	f := newUSBField(t)
	// No bootable image: MCUboot stays in its USB DFU mode (2fe3:ffff).
	z := f.add(t, VirtualUSBConfig{Profile: VirtualZephyr, Upload: true, Reboot: true})
	rec, err := ProbeRecoveryUSB(ctxFor(t), "auto", f.v)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateDFUMode || !strings.Contains(rec.Text, "waits for an image") || rec.USB.Info.ProductID != 0xffff {
		t.Fatalf("probe: %s %s %s", rec.State, rec.Text, rec.USB.Describe())
	}
	// The bundle names the application's run-time ids (2fe3:0100), not the DFU mode's:
	// the person picks the board from its label.
	hw, choices := RecoveryHardware(f.v, rec)
	if hw != "" || !strings.Contains(strings.Join(choices, " "), testvendor.HardwareZephyr) {
		t.Fatalf("hardware %q, choices %v", hw, choices)
	}
	res := f.s.Recover(ctxFor(t), rec, FlashRequest{Bundle: f.v}, nil)
	if res.Status != StatusRefused || !strings.Contains(res.Err.Error(), "--hardware") || !strings.Contains(res.Err.Error(), testvendor.HardwareZephyr) {
		t.Fatalf("without a hardware id: %v %v", res.Status, res.Err)
	}
	var ev events
	res = f.s.Recover(ctxFor(t), rec, FlashRequest{Bundle: f.v, Hardware: testvendor.HardwareZephyr}, ev.add)
	if res.Status != StatusOK {
		t.Fatalf("recover: %v %v\n%s", res.Status, res.Err, ev.text())
	}
	// CONFIG_USB_DFU_REBOOT: the device reboots, MCUboot swaps the image in, and the new
	// application comes up in run-time mode.
	if z.Running() != "2.0.0" {
		t.Fatalf("after recovery MCUboot boots %q\n%s", z.Running(), ev.text())
	}
	rec, err = ProbeRecoveryUSB(ctxFor(t), "auto", nil)
	if err != nil || rec.State != StateDFURuntime || !strings.Contains(rec.Text, "nothing is stuck") {
		t.Fatalf("after recovery: %v %+v", err, rec)
	}
}

func TestRecoverUSBWithNothingConnectedSaysHowToEnterDFUMode(t *testing.T) {
	f := newUSBField(t)
	rec, err := ProbeRecoveryUSB(ctxFor(t), "auto", f.v)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Answered() || !strings.Contains(rec.Text, "no USB DFU device") || !strings.Contains(rec.Next, "BOOT0") || !strings.Contains(rec.Next, "udev") {
		t.Fatalf("%+v", rec)
	}
	rec, err = ProbeRecoveryUSB(ctxFor(t), "0483:df11", nil)
	if err != nil || rec.Answered() || !strings.Contains(rec.Text, "0483:df11") {
		t.Fatalf("%v %+v", err, rec)
	}
	if _, err := ProbeRecoveryUSB(ctxFor(t), "stm32", nil); err == nil || !strings.Contains(err.Error(), "VID:PID") {
		t.Fatalf("a bad spec: %v", err)
	}
}

func TestUSBDevicesFitTheBundleAndUpdateAtOnce(t *testing.T) {
	f := newUSBField(t)
	stm := f.add(t, VirtualUSBConfig{Profile: VirtualSTM32})
	z := f.add(t, VirtualUSBConfig{Profile: VirtualZephyr, Running: "1.0.0", Reboot: true, Upload: true})
	other := f.add(t, VirtualUSBConfig{Profile: VirtualZephyr, Serial: "OTHER1", Running: "1.0.0"})
	list, err := ListUSB(ctxFor(t))
	if err != nil || len(list) != 3 {
		t.Fatalf("%v %v", err, list)
	}
	fits := map[string]Fit{}
	for _, d := range list {
		fits[d.Info.Serial] = CheckFitUSB(f.v, d)
	}
	if ft := fits["325A36713137"]; !ft.OK || ft.Version != "2.0.0" || !strings.HasPrefix(ft.Target, "acme-stm32/") {
		t.Errorf("STM32: %+v", ft)
	}
	if ft := fits["0123456789ABCDEF"]; !ft.OK || !strings.HasPrefix(ft.Target, "acme-zephyr/") {
		t.Errorf("Zephyr: %+v", ft)
	}
	// Same ids, and the same bundle fits it: fit is by USB ids, the serial picks the device.
	if !fits["OTHER1"].OK {
		t.Errorf("the second Zephyr: %+v", fits["OTHER1"])
	}
	// auto refuses when two devices fit: it would have to guess.
	res := f.s.Flash(ctxFor(t), FlashRequest{Bundle: f.v, USB: "auto"}, nil)
	if res.Status != StatusRefused || !strings.Contains(res.Err.Error(), "several") {
		t.Fatalf("auto with three devices: %v %v", res.Status, res.Err)
	}
	var ev events
	all := f.s.FlashAll(ctxFor(t), []FlashRequest{
		{Bundle: f.v, USB: list[0].Spec(), Port: list[0].Key(), DepartWait: 300 * time.Millisecond},
		{Bundle: f.v, USB: list[1].Spec(), Port: list[1].Key(), DepartWait: 300 * time.Millisecond},
	}, ev.add)
	for i, r := range all {
		if r.Status != StatusOK {
			t.Fatalf("device %d: %v %v\n%s", i, r.Status, r.Err, ev.text())
		}
	}
	if stm.Running() != "application" || z.Running() != "2.0.0" || other.Running() != "1.0.0" {
		t.Fatalf("after the update: STM32 %q, Zephyr %q, the other Zephyr %q", stm.Running(), z.Running(), other.Running())
	}
}

func TestUSBUpdateResumesAfterAPulledCable(t *testing.T) {
	f := newUSBField(t)
	stm := f.add(t, VirtualUSBConfig{Profile: VirtualSTM32})
	stm.PullCable(30000)
	go func() {
		if stm.WaitGone(30 * time.Second) {
			time.Sleep(200 * time.Millisecond)
			stm.PlugCable()
		}
	}()
	var ev events
	res := f.s.Flash(ctxFor(t), FlashRequest{Bundle: f.v, USB: "0483:df11", DepartWait: 300 * time.Millisecond,
		Retry: RetryPolicy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}}, ev.add)
	if res.Status != StatusOK {
		t.Fatalf("%v %v\n%s", res.Status, res.Err, ev.text())
	}
	// The first 16 KiB page was written whole before the pull: the transfer went on there.
	if len(res.Resumes) < 2 || res.Resumes[len(res.Resumes)-1] < 16384 {
		t.Fatalf("resume offsets %v\n%s", res.Resumes, ev.text())
	}
}
