package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
)

// What a USB recovery probe found (Recovery.State), beside StateSilent.
const (
	// StateDFUMode: DFU mode, idle: the bootloader waits for an image.
	StateDFUMode = "dfu-mode"
	// StateDFUError: DFU mode, stopped in dfuERROR with a status code (an earlier download
	// or another tool left it there); CLRSTATUS clears it.
	StateDFUError = "dfu-error"
	// StateDFUInterrupted: DFU mode in the middle of a download that stopped.
	StateDFUInterrupted = "dfu-interrupted"
	// StateDFUInstalled: the device installed an image and waits for a USB reset.
	StateDFUInstalled = "dfu-installed"
	// StateDFURuntime: the application runs and offers a DFU run-time interface.
	StateDFURuntime = "dfu-runtime"
)

// DFUState is what a DFU device reported of itself, in its own terms and in words.
type DFUState struct {
	State         string `json:"state"`   // "dfuERROR"
	Meaning       string `json:"meaning"` // what the device is doing in that state
	Status        string `json:"status,omitempty"`
	StatusMeaning string `json:"status_meaning,omitempty"`
	StatusNext    string `json:"status_next,omitempty"`
}

// ProbeRecoveryUSB finds the DFU device spec names ("VID:PID[,SERIAL]", or "auto" for the
// one connected DFU device, the one bundle v fits when v is given) and asks it, without
// changing anything (GETSTATE, and GETSTATUS only where it starts nothing), which state it
// is in: DFU mode and idle, stopped in dfuERROR (the status explained), in the middle of a
// download, installed and waiting for a reset, or its application in run-time mode. No
// device is a Recovery with State StateSilent and the next step; the error is for a
// device that cannot be opened (permissions), several that could be meant, or a cancelled
// ctx.
func ProbeRecoveryUSB(ctx context.Context, spec string, v *Verified) (*Recovery, error) {
	bus := usbBus()
	silent := func(text string) *Recovery {
		return &Recovery{Port: "usb", Tried: []string{"dfu"}, State: StateSilent, Text: text, Next: USBSilentHint(spec)}
	}
	m, err := pickUSB(ctx, bus, spec, v, true)
	if errors.Is(err, dfu.ErrGone) {
		return silent("no USB DFU device is connected (in DFU mode or with a run-time DFU interface)"), nil
	}
	if err != nil {
		return nil, err
	}
	c, err := bus.Open(ctx, m)
	if errors.Is(err, dfu.ErrGone) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return silent(fmt.Sprintf("no USB DFU device %s is connected", m)), nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	info := c.Info()
	cond, err := dfu.Inspect(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r := silent(fmt.Sprintf("%s is on the bus but does not answer DFU requests (%v)", info, err))
		r.Port = "usb " + info.Path
		return r, nil
	}
	dev := &USBDevice{Info: info}
	r := &Recovery{Port: "usb " + info.Path, Tried: []string{"dfu"}, USB: dev, USBSpec: dev.Spec(),
		Probe: &Probe{Protocol: "dfu", Identity: cond.Identity}, Identity: cond.Identity,
		DFU: &DFUState{State: cond.State.String(), Meaning: cond.State.Meaning()}}
	if e := cond.Error(); e != nil {
		r.DFU.Status, r.DFU.StatusMeaning, r.DFU.StatusNext = e.Status.String(), e.Status.Meaning(), e.Status.Next()
	}
	r.State, r.Text, r.Next = dfuCondition(dev, cond)
	return r, nil
}

// dfuCondition puts what a DFU device reported in words: state, text, and what recover
// does about it.
func dfuCondition(dev *USBDevice, c *dfu.Condition) (state, text, next string) {
	info := dev.Info
	withBundle := fmt.Sprintf("`fieldflash recover --usb %s BUNDLE.fwb`", dev.Spec())
	resume := "writes the whole image again (plain DFU has no addressing and cannot resume)"
	if info.DfuSe() {
		resume = "reads back what the device holds and writes from the first page that differs"
	}
	switch c.State {
	case dfu.StateAppIdle, dfu.StateAppDetach:
		return StateDFURuntime,
			"the application runs and offers DFU (run-time mode): nothing is stuck; an update detaches it into DFU mode first",
			fmt.Sprintf("to update it: `fieldflash flash BUNDLE.fwb --usb %s` (or %s)", dev.Spec(), withBundle)
	case dfu.StateIdle, dfu.StateUploadIdle:
		text = "DFU mode: the bootloader waits for an image"
		if info.DfuSe() {
			text += " (DfuSe: a download erases only the pages the image covers)"
		}
		if c.State == dfu.StateUploadIdle {
			text += "; an upload was left open, which ABORT ends"
		}
		return StateDFUMode, text, "flash the bundle made for it: " + withBundle
	case dfu.StateError:
		e := c.Error()
		text = fmt.Sprintf("DFU mode, stopped with an error: the device reports %s (%s) in dfuERROR; an earlier download, or another tool, left it there", e.Status, e.Status.Meaning())
		next = "recover clears the error (CLRSTATUS) and downloads the bundle: " + withBundle
		if n := e.Status.Next(); n != "" {
			next += "; if the error comes back: " + n
		}
		return StateDFUError, text, next
	case dfu.StateDnloadSync, dfu.StateDnBusy, dfu.StateDnloadIdle, dfu.StateManifestSync:
		return StateDFUInterrupted,
			fmt.Sprintf("DFU mode, in the middle of a download that stopped (%s): the device holds a partial image and will not start it", c.State),
			"recover ends the old download (ABORT) and " + resume + ": " + withBundle
	case dfu.StateManifest, dfu.StateManifestWaitReset:
		return StateDFUInstalled,
			fmt.Sprintf("the device installed an image and waits for a USB reset to start it (%s)", c.State),
			"unplug it and plug it back in; if it comes back in DFU mode the image did not start: " + withBundle
	}
	return StateDFUMode, fmt.Sprintf("the device is in %s, which DFU 1.1 does not define (its firmware is not standard)", c.State),
		"power-cycle it in DFU mode and run recover again: " + withBundle
}

// Device is the device a recovery probe found, in one line.
func (r *Recovery) Device() string {
	if r.USB != nil {
		return r.USB.Describe()
	}
	if r.Identity == nil {
		return r.Port
	}
	return DescribeIdentity(r.Identity, r.Port)
}

// RecoveryHardware is the hardware id a recovery of the device rec found flashes with
// bundle v: the device's own (SMP), the one the bundle's targets for its USB ids name
// (DFU), or "" with the ids the person picks from (read from the board's label).
func RecoveryHardware(v *Verified, rec *Recovery) (hardware string, choices []string) {
	switch {
	case rec.USB != nil:
		hws := usbHardware(v, rec.USB.Info)
		if len(hws) == 1 {
			return hws[0], nil
		}
		if len(hws) > 1 {
			return "", hws
		}
		return "", bundleHardware(v, "dfu")
	case rec.Identity != nil && rec.Identity.HardwareID != "":
		return rec.Identity.HardwareID, nil
	}
	proto := ""
	if rec.Probe != nil {
		proto = rec.Probe.Protocol
	}
	return "", bundleHardware(v, proto)
}

// recoverUSB is Recover for a DFU device: the same engine as Flash, on the very device
// the probe found, for the hardware the bundle's USB ids name (or req.Hardware).
func (s *Session) recoverUSB(ctx context.Context, rec *Recovery, req FlashRequest, events func(Event)) *FlashResult {
	req.USB, req.Port, req.Protocol = rec.USBSpec, rec.Port, "dfu"
	if req.Hardware == "" {
		hw, choices := RecoveryHardware(req.Bundle, rec)
		if hw == "" {
			reason := fmt.Sprintf("no target of the bundle names USB %s (protocol hints usb_vendor/usb_product, or a DFU file's suffix)", rec.USB.Info.ID())
			if len(choices) > 1 && len(usbHardware(req.Bundle, rec.USB.Info)) > 1 {
				reason = "several targets of the bundle name USB " + rec.USB.Info.ID()
			}
			next := "use the bundle made for this device"
			if len(choices) > 0 {
				next = fmt.Sprintf("read the hardware id from the board's label and pass --hardware; this bundle has DFU firmware for %s", strings.Join(choices, ", "))
			}
			err := &flasher.Error{Code: flasher.CodeHardware, Thing: rec.USB.Info.String(), Reason: reason, Next: next}
			res := &FlashResult{Port: rec.Port, Protocol: "dfu", Before: rec.Identity, Err: err, Status: StatusRefused}
			s.recordFlash(audit.KindRecovery, req, res, 0)
			return res
		}
		req.Hardware = hw
	}
	return s.flash(ctx, req, events, audit.KindRecovery)
}
