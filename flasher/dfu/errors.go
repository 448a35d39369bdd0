package dfu

import (
	"errors"
	"fmt"
)

// DeviceError is a GETSTATUS that reported an error status: the device's own words, in
// plain language, with the next step.
type DeviceError struct {
	Op     string // what the driver was doing: "writing block 12", "erasing page 0x08004000"
	Status Status
	State  State
}

func (e *DeviceError) Error() string {
	msg := fmt.Sprintf("dfu: %s: the device reports %s (%s) in state %s", e.Op, e.Status, e.Status.Meaning(), e.State)
	if n := e.Status.Next(); n != "" {
		msg += "; " + n
	}
	return msg
}

// Transient says whether flashing again may help: a reset, a stalled packet or an
// unknown error may be the line's fault; a refused write, a wrong file or a bad address
// will be refused again.
func (e *DeviceError) Transient() bool {
	switch e.Status {
	case StatusErrUSBR, StatusErrPOR, StatusErrUnknown, StatusErrStalledPkt, StatusErrNotDone:
		return true
	}
	return false
}

// linkError is a fault of the link or of the device's state that a fresh attempt may
// clear (flasher.IsTransient reads Transient).
type linkError struct{ error }

func (e *linkError) Transient() bool { return true }
func (e *linkError) Unwrap() error   { return e.error }

func transient(format string, args ...any) error { return &linkError{fmt.Errorf(format, args...)} }

// gone wraps err as transient when the device left the bus or stalled: the engine
// reconnects and tries again.
func wrapConn(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrGone) || errors.Is(err, ErrStall) {
		return &linkError{fmt.Errorf("dfu: %s: %w", op, err)}
	}
	return fmt.Errorf("dfu: %s: %w", op, err)
}
