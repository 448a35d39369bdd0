//go:build unix

package app

import (
	"context"
	"testing"
	"time"
)

// TestFlashEveryDeviceProfile flashes the demo bundle onto virtual devices that answer as
// upstream firmware does (sim/smpdev profiles, docs/devices.md), with a flash part's
// erase, program, reset and swap times, through the same Session.Flash the CLI and the
// GUI call: stock Zephyr (no params, no info, a 384-byte buffer: the hardware id comes
// from the request, as from --hardware), Zephyr tuned for speed on the raw UART
// transport, and stock Zephyr behind a USB CDC-ACM port that leaves the bus during the
// reset. Each must end confirmed on the new image.
func TestFlashEveryDeviceProfile(t *testing.T) {
	cases := []struct {
		name, profile, part string
		usb                 bool
		hardware            string
	}{
		{"stock Zephyr on an nRF52840 UART", "zephyr", "nrf52840", false, SimHardwareSMP},
		{"tuned Zephyr, raw UART, STM32F4", "zephyr-tuned", "stm32f4", false, ""},
		{"stock Zephyr behind USB CDC-ACM", "zephyr", "none", true, SimHardwareSMP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, v := demoSession(t)
			dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 115200, Profile: c.profile, Part: c.part, USBCDC: c.usb})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var evs events
			res := s.Flash(ctx, FlashRequest{Bundle: v, Port: dev.Path(), Hardware: c.hardware,
				Retry: RetryPolicy{Initial: 200 * time.Millisecond, Max: time.Second, Tries: 20}}, evs.add)
			if res.Status != StatusOK || res.Outcome == nil || res.Outcome.Result != ResultConfirmed || dev.Running() != "1.1.0" {
				t.Fatalf("status %d, %v; runs %s; want confirmed 1.1.0", res.Status, res.Err, dev.Running())
			}
			if c.profile == "zephyr-tuned" && (res.Before == nil || res.Before.Transport != "raw") {
				t.Errorf("identity %+v: want the raw UART transport found", res.Before)
			}
		})
	}
}

// TestStockZephyrWithoutHardwareIsRefusedWithTheNextStep: a stock Zephyr build does not
// say what board it is; the refusal names --hardware and the bundle's hardware ids, and
// the device is not touched.
func TestStockZephyrWithoutHardwareIsRefusedWithTheNextStep(t *testing.T) {
	s, v := demoSession(t)
	dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0, Profile: "zephyr"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := s.Flash(ctx, FlashRequest{Bundle: v, Port: dev.Path()}, nil)
	if res.Status != StatusRefused || res.Err == nil || !containsAll(res.Err.Error(), "--hardware", SimHardwareSMP) {
		t.Fatalf("status %d, %v; want a refusal that names --hardware and %s", res.Status, res.Err, SimHardwareSMP)
	}
	if dev.Running() != "1.0.0" {
		t.Fatalf("runs %s; want the device untouched", dev.Running())
	}
}

// TestRecoveryOnStockMCUbootSerialRecovery: echo off (rc 8), no params, whole-slot erase
// at offset 0, aligned writes, on an nRF52840's timing; found by the probe and brought
// back with the bundle.
func TestRecoveryOnStockMCUbootSerialRecovery(t *testing.T) {
	s, v := demoSession(t)
	dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 115200, Profile: "mcuboot", Part: "nrf52840"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rec, err := ProbeRecovery(ctx, dev.Path(), 115200, "")
	if err != nil || rec.State != StateSerialRecovery {
		t.Fatalf("probe: %v %+v; want MCUboot serial recovery found although echo is off", err, rec)
	}
	res := s.Recover(ctx, rec, FlashRequest{Bundle: v, Hardware: SimHardwareSMP}, nil)
	if res.Status != StatusOK {
		t.Fatalf("recovery: %d %v", res.Status, res.Err)
	}
	if got := dev.Running(); got != "1.1.0" {
		t.Fatalf("primary slot holds %q, want 1.1.0", got)
	}
}
