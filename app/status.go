package app

import (
	"context"
	"errors"

	"github.com/fieldflash/fieldflash/app/fetch"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
)

// Status is how an operation ended, in the classes both faces show: the CLI's exit codes
// (docs/cli.md) are these numbers, and the GUI picks its words and buttons from them.
type Status int

// Statuses. The numbers are the CLI's exit codes; 2 (usage) is the CLI's own.
const (
	StatusOK          Status = 0 // everything held
	StatusRefused     Status = 1 // refused for a stated reason; the device was not written
	StatusEnvironment Status = 3 // a file, directory or port could not be used
	StatusDevice      Status = 4 // the device stopped answering or failed; resumable
	StatusCanceled    Status = 5 // interrupted by the user; resumable
)

// planStatus classifies a refused plan: the device was not written.
func planStatus(err error) Status {
	switch flasher.CodeOf(err) {
	case flasher.CodeJournal:
		return StatusEnvironment
	case "":
		var ve *verify.Error
		if errors.As(err, &ve) {
			return StatusRefused
		}
		return StatusEnvironment
	}
	return StatusRefused
}

// outcomeStatus classifies a run's outcome.
func outcomeStatus(ctx context.Context, o *flasher.Outcome, err error) Status {
	if err == nil {
		return StatusOK
	}
	code := flasher.CodeOf(err)
	if code == flasher.CodeJournal {
		// The journal could not be written ($FIELDFLASH_HOME full or read-only): fix that
		// first; the engine stops rather than flash without a way to resume.
		return StatusEnvironment
	}
	switch o.Result {
	case flasher.ResultInterrupted:
		if code == flasher.CodeCancelled || ctx.Err() != nil {
			return StatusCanceled
		}
		return StatusDevice
	case flasher.ResultFailed:
		switch code {
		case flasher.CodeHardware, flasher.CodeWrongDevice, flasher.CodeReleaseCounter, flasher.CodeRequirement,
			flasher.CodeSlotSize, flasher.CodeProtocol, flasher.CodeNoTarget, flasher.CodeBundleChanged:
			return StatusRefused
		case flasher.CodeJournal:
			return StatusEnvironment
		case flasher.CodeCancelled:
			return StatusCanceled
		}
	}
	return StatusDevice
}

// ErrorCode is the short machine word for err, as --json prints it: the engine's or the
// verifier's code, "port" for a port that could not be opened, else "environment".
func ErrorCode(err error) string {
	if c := flasher.CodeOf(err); c != "" {
		return string(c)
	}
	var ve *verify.Error
	if errors.As(err, &ve) {
		return string(ve.Code)
	}
	var oe *serial.OpenError
	if errors.As(err, &oe) {
		return "port"
	}
	if c := fetch.CodeOf(err); c != "" {
		return string(c)
	}
	return "environment"
}

// NextStep is the concrete next step an engine or port error carries, or "". (A
// VerifyError carries its own Next.)
func NextStep(err error) string {
	var fe *flasher.Error
	if errors.As(err, &fe) {
		return fe.Next
	}
	var oe *serial.OpenError
	if errors.As(err, &oe) {
		return oe.Next
	}
	return ""
}

func asFlashError(err error, fe **flasher.Error) bool { return errors.As(err, fe) }
