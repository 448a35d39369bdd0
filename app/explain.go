package app

import (
	"errors"
	"fmt"

	"github.com/fieldflash/fieldflash/flasher"
)

// Explanation is a flash result in the words a person needs after it: what happened,
// whether the device is safe, the next concrete step, and which buttons make sense.
type Explanation struct {
	Headline string
	// Safe: the device runs a working image (its old one or the new one) and will boot.
	Safe   bool
	Safety string
	Next   string
	// Resumable: running the same update again continues where it stopped.
	Resumable bool
	// Recovery: the recovery wizard is the way on (the device stopped answering or was
	// left without a confirmed image).
	Recovery bool
}

// Explain puts a flash result in plain words.
func Explain(r *FlashResult) Explanation {
	before := RunningVersion(r.Before)
	inBootloader := r.Before != nil && (r.Before.Mode == flasher.ModeRecovery || r.Before.Mode == flasher.ModeBootloader)
	var ex Explanation
	ex.Next = NextStep(r.Err)
	var fe *flasher.Error
	reason := ""
	if errors.As(r.Err, &fe) {
		reason = fe.Reason
	} else if r.Err != nil {
		reason = r.Err.Error()
	}
	var ve *VerifyError
	if errors.As(r.Err, &ve) {
		reason, ex.Next = ve.Reason, ve.Next
	}
	o := r.Outcome
	switch {
	case r.Status == StatusOK && o != nil && o.Result == flasher.ResultAlreadyCurrent:
		ex.Headline = fmt.Sprintf("Already up to date: the device runs %s", o.Version)
		ex.Safe, ex.Safety = true, "Nothing needed to be written."
	case r.Status == StatusOK && o != nil:
		ex.Headline = fmt.Sprintf("Updated: the device runs %s", o.Version)
		ex.Safe, ex.Safety = true, fmt.Sprintf("The new image booted, answered its health check and is %s.", map[bool]string{true: "confirmed", false: "installed"}[o.Result == flasher.ResultConfirmed])
	case r.Status == StatusRefused:
		ex.Headline = "Not updated: " + reason
		ex.Safe, ex.Safety = true, "Nothing was written: the device runs what it ran ("+before+")."
		if ex.Next == "" {
			ex.Next = "Use a bundle made for this device."
		}
	case r.Status == StatusEnvironment:
		ex.Headline = "Could not start: " + reason
		ex.Safe, ex.Safety = true, "The device was not touched."
		ex.Resumable = true
	case r.Status == StatusCanceled:
		ex.Headline = "Stopped"
		if o != nil {
			ex.Headline = fmt.Sprintf("Stopped during %s", o.Step)
		}
		ex.Safe, ex.Safety = !inBootloader, "The device keeps running its current image ("+before+")."
		if inBootloader {
			ex.Safety = "The bootloader keeps waiting for an image: finish the update before restarting the device."
		}
		ex.Next, ex.Resumable = "Press Resume to continue where it stopped.", true
	default: // StatusDevice
		step := "the update"
		if o != nil {
			step = string(o.Step)
		}
		ex.Headline = fmt.Sprintf("The device stopped during %s: %s", step, reason)
		ex.Resumable, ex.Recovery = true, true
		switch {
		case o != nil && o.Result == flasher.ResultReverted:
			ex.Safe, ex.Safety = true, "The device went back to its old image ("+before+")."
			ex.Recovery = false
		case o != nil && o.Result == flasher.ResultNotConfirmed:
			ex.Safe, ex.Safety = false, "The new image was not confirmed: the bootloader goes back to the old image ("+before+") at the next reset."
		case inBootloader:
			ex.Safe, ex.Safety = false, "Not yet safe: the bootloader holds a partial image and waits for the rest. Do not unplug it for good; resume or use recovery."
		case o != nil && o.Code == flasher.CodeBundleChanged && inBootloader:
			ex.Safe, ex.Safety = false, reason
		default:
			ex.Safe, ex.Safety = true, "Safe: the device is still on its old image ("+before+"); nothing was activated."
		}
	}
	return ex
}
