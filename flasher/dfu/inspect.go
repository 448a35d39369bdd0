package dfu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
)

// Condition is what a DFU device says of its state when asked without being changed:
// the recovery probe's answer for a device someone brought in stuck.
type Condition struct {
	State State
	// Status is the device's status; StatusKnown says whether it was asked (GETSTATUS is
	// asked only in the states where it starts nothing).
	Status      Status
	StatusKnown bool
	// Identity is what the driver's Identify would report in this state.
	Identity *flasher.Identity
}

// Inspect asks the device on conn which state it is in (GETSTATE, which DFU 1.1 defines
// to change nothing) and, in the states where GETSTATUS starts nothing, its status: the
// error code of a device in dfuERROR. It never asks GETSTATUS in dfuDNLOAD-SYNC or
// dfuMANIFEST-SYNC, where the answer would start a flash write or manifestation, nor in
// the busy states. A run-time interface may stall both requests (they are optional
// there): it is then in appIDLE.
func Inspect(ctx context.Context, conn Conn) (*Condition, error) {
	info := conn.Info()
	ask := func(req uint8, buf []byte) (int, error) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return conn.ControlIn(c, req, 0, buf)
	}
	var b [StatusReplyLength]byte
	n, err := ask(ReqGetState, b[:1])
	switch {
	case err != nil && info.Runtime() && errors.Is(err, ErrStall):
		return &Condition{State: StateAppIdle, Identity: identity(info, StateAppIdle)}, nil
	case err != nil:
		return nil, wrapConn("GETSTATE", err)
	case n != 1:
		return nil, fmt.Errorf("dfu: GETSTATE answered %d bytes, not 1", n)
	}
	c := &Condition{State: State(b[0])}
	switch c.State {
	case StateAppIdle, StateAppDetach, StateIdle, StateDnloadIdle, StateUploadIdle, StateManifestWaitReset, StateError:
		n, err := ask(ReqGetStatus, b[:])
		if err != nil && !(info.Runtime() && errors.Is(err, ErrStall)) {
			return nil, wrapConn("GETSTATUS", err)
		}
		if err == nil {
			st, err := ParseStatus(b[:n])
			if err != nil {
				return nil, err
			}
			c.Status, c.StatusKnown, c.State = st.Status, true, st.State
		}
	}
	c.Identity = identity(info, c.State)
	return c, nil
}

// Error is the condition as the error the device reports, or nil when it reports none.
func (c *Condition) Error() *DeviceError {
	if c.State == StateError || (c.StatusKnown && c.Status != StatusOK) {
		return &DeviceError{Op: "found", Status: c.Status, State: c.State}
	}
	return nil
}

// identity is what Identify reports of a device in state st.
func identity(info *DeviceInfo, st State) *flasher.Identity {
	id := &flasher.Identity{Protocol: "dfu", BufferSize: info.Functional.TransferSize, Mode: flasher.ModeBootloader, Bootloader: describe(info)}
	switch {
	case info.Runtime() || st == StateAppIdle || st == StateAppDetach:
		id.Mode = flasher.ModeApplication
	case st == StateManifest || st == StateManifestWaitReset:
		// Installing, or about to reset into the new image: not there yet.
		id.Mode = flasher.ModeRecovery
	}
	return id
}
