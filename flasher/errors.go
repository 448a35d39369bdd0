package flasher

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	serialport "github.com/fieldflash/fieldflash/transports/serial"
)

// Code classifies why a plan was refused or a run stopped. The CLI's --json output, the
// audit log and tests match on it; the message is for people.
type Code string

// The reasons the engine refuses or stops.
const (
	CodeNoTarget       Code = "no-target"       // the bundle has no target for this device
	CodeHardware       Code = "hardware"        // the target does not list the device's hardware id
	CodeReleaseCounter Code = "release-counter" // anti-rollback: the target's counter is below the device's
	CodeRequirement    Code = "requirement"     // a requirement on another component is not met
	CodeSlotSize       Code = "slot-size"       // the image does not fit the slot
	CodeProtocol       Code = "protocol"        // the device's protocol is not one the target allows
	CodeBundleChanged  Code = "bundle-changed"  // the bundle file changed after it was verified
	CodeWrongDevice    Code = "wrong-device"    // the device on the link is not the one planned for
	CodeDeviceLost     Code = "device-lost"     // the device stopped answering and retries ran out
	CodeDevice         Code = "device"          // the device refused a request
	CodeCheck          Code = "check"           // the device does not hold the image whole
	CodeProbe          Code = "probe"           // the device did not come back running the new image
	CodeCancelled      Code = "cancelled"       // the run was cancelled; the journal holds the resume point
	CodeJournal        Code = "journal"         // the journal could not be read or written
)

// Error is a refusal or a stop: it names the thing, the reason and the next step.
type Error struct {
	Code   Code
	Thing  string // "target app.bin", "device acme-gw-r2 on /dev/ttyACM0", "bundle acme.fwb"
	Reason string
	Next   string // what the user should do
	Err    error
}

func (e *Error) Error() string {
	msg := ""
	if e.Thing != "" {
		msg = e.Thing + ": "
	}
	msg += e.Reason
	if e.Err != nil && e.Reason == "" {
		msg += e.Err.Error()
	}
	if e.Next != "" {
		msg += "; " + e.Next
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of err, or "" when err is not an engine Error.
func CodeOf(err error) Code {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// IsTransient reports whether err is a link fault worth retrying after a pause (and a
// reconnect): timeouts, a cable pulled, a port that vanished. A device that answers with
// a refusal is not transient: retrying would only repeat it.
//
// Drivers mark their own transient errors by implementing Transient() bool or
// Timeout() bool (as net.Error and os.ErrDeadlineExceeded do).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var tr interface{ Transient() bool }
	if errors.As(err, &tr) {
		return tr.Transient()
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return true
	}
	switch {
	case errors.Is(err, serialport.ErrDisconnected),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.ErrClosedPipe),
		errors.Is(err, os.ErrClosed),
		errors.Is(err, syscall.EIO),
		errors.Is(err, syscall.ENXIO),
		errors.Is(err, syscall.ENODEV),
		errors.Is(err, syscall.ENOENT),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EBADF),
		errors.Is(err, syscall.EAGAIN):
		return true
	}
	return false
}
