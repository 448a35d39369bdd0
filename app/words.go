package app

import (
	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/verify"
)

// The faces (cli/, ui/) import app only. These names are the words of the lower layers
// that a face needs to show what happened; they are the same types, not copies, so a
// value passes through app unchanged.
type (
	// Verified is a bundle that verified: repository, roles, targets.
	Verified = verify.Verified
	// Target is one firmware image in a verified bundle.
	Target = verify.Target
	// ImageInfo is what a self-describing image (MCUboot, DFU) says of itself.
	ImageInfo = verify.ImageInfo
	// VerifyOptions are the device facts a verification may check against.
	VerifyOptions = verify.Options
	// VerifyError is a refusal of a bundle: code, thing, reason, next step.
	VerifyError = verify.Error
	// VerifyCode classifies a VerifyError.
	VerifyCode = verify.Code

	// Identity is what a device says of itself.
	Identity = flasher.Identity
	// Slot is one image slot of a device.
	Slot = flasher.Slot
	// Step is one state of an update.
	Step = flasher.Step
	// Kind says what an Event reports.
	Kind = flasher.Kind
	// EngineEvent is the update engine's own event, which Event carries.
	EngineEvent = flasher.Event
	// Outcome is how one update ended.
	Outcome = flasher.Outcome
	// Result names an Outcome.
	Result = flasher.Result
	// FlashError is a refusal or stop of the engine: code, thing, reason, next step.
	FlashError = flasher.Error
	// FlashCode classifies a FlashError.
	FlashCode = flasher.Code
	// JournalEntry is one update's journal on disk.
	JournalEntry = flasher.JournalEntry
	// RetryPolicy says how long a run waits for a device that stopped answering.
	RetryPolicy = flasher.RetryPolicy

	// Port is a port a device may be on: a serial port or a virtual device.
	Port = transports.PortInfo
)

// The steps of an update, in order.
const (
	StepPreflight = flasher.StepPreflight
	StepTransfer  = flasher.StepTransfer
	StepCheck     = flasher.StepCheck
	StepActivate  = flasher.StepActivate
	StepReset     = flasher.StepReset
	StepProbe     = flasher.StepProbe
	StepConfirm   = flasher.StepConfirm
	StepRevert    = flasher.StepRevert
	StepDone      = flasher.StepDone
)

// How an update ended.
const (
	ResultConfirmed      = flasher.ResultConfirmed
	ResultInstalled      = flasher.ResultInstalled
	ResultAlreadyCurrent = flasher.ResultAlreadyCurrent
	ResultReverted       = flasher.ResultReverted
	ResultNotConfirmed   = flasher.ResultNotConfirmed
	ResultFailed         = flasher.ResultFailed
	ResultInterrupted    = flasher.ResultInterrupted
)

// What answers on a device (Identity.Mode).
const (
	ModeApplication = flasher.ModeApplication
	ModeRecovery    = flasher.ModeRecovery
	ModeBootloader  = flasher.ModeBootloader
)

// Codes a face matches on.
const (
	CodeIO          = verify.CodeIO
	CodeHardware    = flasher.CodeHardware
	CodeDeviceLost  = flasher.CodeDeviceLost
	CodeCancelled   = flasher.CodeCancelled
	CodeJournal     = flasher.CodeJournal
	CodeFlashDevice = flasher.CodeDevice
)

// CodeOfFlash returns the engine's Code of err, or "".
func CodeOfFlash(err error) FlashCode { return flasher.CodeOf(err) }

// CodeProbe: the device did not come back running the new image.
const CodeProbe = flasher.CodeProbe

// Icon is the desktop app's icon, a PNG.
func Icon() []byte { return assets.Icon }
