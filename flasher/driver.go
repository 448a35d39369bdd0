// Package flasher is the update engine: it plans an update from a verified bundle and a
// device's identity, runs it through a never-brick state machine (preflight, transfer,
// check, activate, reset, health probe, confirm or revert), journals every step so a crash
// resumes where it stopped, and reports events to whoever watches (GUI, CLI, audit,
// telemetry). Device protocols live in sub-packages (smp, ymodem, dfu); each implements
// Driver.
package flasher

import (
	"context"
	"io"
)

// Image is one verified payload on its way to a device.
type Image struct {
	Name           string // TUF target path
	Size           int64
	SHA256         [32]byte
	Version        string
	ReleaseCounter uint64
	Component      string
	Slot           int     // MCUmgr image number, or USB DFU alternate setting
	Address        *uint64 // flash address hint, if any
	Data           io.ReaderAt
}

// Capabilities say which verbs a driver offers. The engine skips steps a driver lacks
// (USB DFU has no test/confirm: the device manifests by itself).
type Capabilities struct {
	Resume   bool // the device reports how much of an interrupted upload it holds
	Check    bool // the device reports the hash of the written image
	Test     bool // Activate marks the image for one trial boot, reverted unless confirmed
	Confirm  bool // Confirm makes a tested image permanent
	Revert   bool // Revert goes back to the previous image explicitly
	Reset    bool
	Erase    bool
	Recovery bool // the driver can talk to the device's recovery bootloader
	// Departs: after Reset the device may leave for an application that does not speak
	// this protocol (a DfuSe leave, a DFU device that reboots into its application). A
	// probe that finds the device gone for PlanOptions.DepartWait counts as started.
	Departs bool
}

// CheckReporter is a Driver that can say how it checked the written image ("read back
// 70 KiB: identical", or "relying on the device's own check"); the engine shows it at
// the check step, also when the driver offers no Check.
type CheckReporter interface {
	CheckReport() string
}

// Identity is what a device says of itself.
type Identity struct {
	Protocol       string            `json:"protocol"`
	HardwareID     string            `json:"hardware_id,omitempty"`
	Bootloader     string            `json:"bootloader,omitempty"`
	Mode           string            `json:"mode,omitempty"` // ModeApplication, ModeRecovery or ModeBootloader
	Slots          []Slot            `json:"slots,omitempty"`
	ReleaseCounter *uint64           `json:"release_counter,omitempty"`
	BufferSize     int               `json:"buffer_size,omitempty"` // bytes the device takes per request
	Transport      string            `json:"transport,omitempty"`   // how the protocol is carried: SMP "console" or "raw"
	Components     map[string]string `json:"components,omitempty"`  // component -> running version
}

// What answers on the device, as Identity.Mode says it.
const (
	// ModeApplication: the running application answers (MCUmgr in a Zephyr app).
	ModeApplication = "application"
	// ModeRecovery: a recovery bootloader runs instead of the application (MCUboot serial
	// recovery); the slots it reports are not running, and the engine waits for it to
	// leave after a reset.
	ModeRecovery = "recovery"
	// ModeBootloader: a classic bootloader answers for the application it holds and
	// starts by itself (YMODEM bootloaders): its active slot is the application that runs,
	// and an upload overwrites it.
	ModeBootloader = "bootloader"
)

// Slot is one image slot as the device reports it.
type Slot struct {
	Image     int    `json:"image"`
	Slot      int    `json:"slot"`
	Version   string `json:"version,omitempty"`
	Hash      []byte `json:"hash,omitempty"`
	Size      int64  `json:"size,omitempty"` // capacity in bytes, when known
	Bootable  bool   `json:"bootable"`
	Pending   bool   `json:"pending"`
	Confirmed bool   `json:"confirmed"`
	Active    bool   `json:"active"`
	Permanent bool   `json:"permanent"`
}

// Driver is one device protocol over one open link. Methods a driver's Capabilities do not
// offer return ErrUnsupported.
type Driver interface {
	Protocol() string
	Capabilities() Capabilities
	Identify(ctx context.Context) (*Identity, error)
	// ResumeOffset returns how many bytes of img the device already holds from an
	// interrupted upload of the same image (same hash); 0 when none.
	ResumeOffset(ctx context.Context, img *Image) (int64, error)
	// Write sends img starting at byte from. progress is called with the number of bytes
	// the device has acknowledged. It returns the acknowledged offset, also on error.
	Write(ctx context.Context, img *Image, from int64, progress func(acked int64)) (int64, error)
	// Check confirms the device holds img whole (its hash), before anything is activated.
	Check(ctx context.Context, img *Image) error
	// Activate makes img the one to boot next: a trial boot where Test is offered.
	Activate(ctx context.Context, img *Image) error
	// Confirm makes the running image permanent.
	Confirm(ctx context.Context, img *Image) error
	// Revert goes back to the previous image.
	Revert(ctx context.Context) error
	// Reset reboots the device.
	Reset(ctx context.Context) error
	Close() error
}

// ErrUnsupported is returned by verbs a driver does not offer.
var ErrUnsupported = errUnsupported{}

type errUnsupported struct{}

func (errUnsupported) Error() string { return "not supported by this device protocol" }
