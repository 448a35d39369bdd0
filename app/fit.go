package app

import (
	"fmt"

	"github.com/fieldflash/fieldflash/flasher"
)

// Fit says whether a verified bundle has firmware for a device, as the update's
// preflight would judge it: hardware id, release counter, requirements, slot size,
// protocol. Nothing is sent to the device.
type Fit struct {
	OK      bool   `json:"ok"`
	Target  string `json:"target,omitempty"`
	Version string `json:"version,omitempty"`
	Running string `json:"running,omitempty"` // what the device runs now
	Current bool   `json:"current,omitempty"` // the device already runs this version
	// Reason says why not, in plain words, with the next step.
	Reason string    `json:"reason,omitempty"`
	Code   FlashCode `json:"code,omitempty"`
}

// CheckFit runs the preflight of an update of the device identified as id, on port, with
// the bundle v.
func CheckFit(v *Verified, id *Identity, port string) Fit { return CheckFitAs(v, id, port, "") }

// CheckFitAs is CheckFit with the hardware id a person read off the device's label, for a
// device that does not report it (stock Zephyr, MCUboot serial recovery, a classic
// bootloader); "" when it does.
func CheckFitAs(v *Verified, id *Identity, port, hardware string) Fit {
	if v == nil || id == nil {
		return Fit{Reason: "open a bundle and connect the device first"}
	}
	plan, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{Protocol: id.Protocol, Port: port, HardwareID: hardware})
	if err != nil {
		f := Fit{Reason: err.Error(), Code: flasher.CodeOf(err), Running: RunningVersion(id)}
		var fe *flasher.Error
		if asFlashError(err, &fe) {
			f.Reason = fe.Reason
			if fe.Next != "" {
				f.Reason += "; " + fe.Next
			}
		}
		return f
	}
	defer plan.Close()
	running := RunningVersion(id)
	return Fit{OK: true, Target: plan.Target.Path, Version: plan.Target.Meta.Version, Running: running,
		Current: running == plan.Target.Meta.Version}
}

// String is the fit in a few words, for a list.
func (f Fit) String() string {
	switch {
	case f.OK && f.Current:
		return fmt.Sprintf("already runs %s", f.Version)
	case f.OK:
		return fmt.Sprintf("fits: %s -> %s", f.Running, f.Version)
	}
	return "does not fit: " + f.Reason
}
