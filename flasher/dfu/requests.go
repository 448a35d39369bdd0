package dfu

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The requests of DFU 1.1 on the driver's Conn, each bounded by the request timeout.

func (d *Driver) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opt.RequestTimeout)
}

func (d *Driver) getStatus(ctx context.Context) (StatusReply, error) {
	c, cancel := d.ctx(ctx)
	defer cancel()
	var b [StatusReplyLength]byte
	n, err := d.conn.ControlIn(c, ReqGetStatus, 0, b[:])
	if err != nil {
		return StatusReply{}, wrapConn("GETSTATUS", err)
	}
	d.stats.Requests++
	return ParseStatus(b[:n])
}

func (d *Driver) getState(ctx context.Context) (State, error) {
	c, cancel := d.ctx(ctx)
	defer cancel()
	var b [1]byte
	n, err := d.conn.ControlIn(c, ReqGetState, 0, b[:])
	if err != nil {
		return 0, wrapConn("GETSTATE", err)
	}
	if n != 1 {
		return 0, fmt.Errorf("dfu: GETSTATE answered %d bytes, not 1", n)
	}
	return State(b[0]), nil
}

func (d *Driver) out(ctx context.Context, req uint8, value uint16, data []byte, op string) error {
	c, cancel := d.ctx(ctx)
	defer cancel()
	d.stats.Requests++
	return wrapConn(op, d.conn.ControlOut(c, req, value, data))
}

func (d *Driver) in(ctx context.Context, req uint8, value uint16, buf []byte, op string) (int, error) {
	c, cancel := d.ctx(ctx)
	defer cancel()
	d.stats.Requests++
	n, err := d.conn.ControlIn(c, req, value, buf)
	return n, wrapConn(op, err)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll asks GETSTATUS until the device leaves the busy states (dfuDNLOAD-SYNC, dfuDNBUSY,
// dfuMANIFEST-SYNC, dfuMANIFEST), waiting bwPollTimeout between requests as the device
// asks (DFU 1.1 section 6.1.2: the host must not ask sooner). An error status is a
// *DeviceError.
func (d *Driver) poll(ctx context.Context, op string) (StatusReply, error) {
	for {
		st, err := d.getStatus(ctx)
		if err != nil {
			return st, err
		}
		if st.Status != StatusOK || st.State == StateError {
			return st, &DeviceError{Op: op, Status: st.Status, State: st.State}
		}
		switch st.State {
		case StateDnloadSync, StateDnBusy, StateManifestSync, StateManifest:
			d.stats.Polls++
			if err := sleep(ctx, st.PollTimeout); err != nil {
				return st, err
			}
			continue
		}
		return st, nil
	}
}

// toIdle brings the device to dfuIDLE from wherever it stands (DFU 1.1 appendix A):
// CLRSTATUS from dfuERROR, ABORT from the idle states of a download or upload. It
// returns the error status it cleared, if any, for the message.
func (d *Driver) toIdle(ctx context.Context) (*DeviceError, error) {
	var cleared *DeviceError
	for range 4 {
		st, err := d.getStatus(ctx)
		if err != nil {
			return cleared, err
		}
		switch st.State {
		case StateIdle:
			if st.Status == StatusOK {
				return cleared, nil
			}
			fallthrough
		case StateError:
			if cleared == nil {
				cleared = &DeviceError{Op: "found", Status: st.Status, State: st.State}
			}
			d.stats.ClrStatus++
			if err := d.out(ctx, ReqClrStatus, 0, nil, "CLRSTATUS"); err != nil {
				return cleared, err
			}
		case StateDnloadIdle, StateUploadIdle, StateDnloadSync, StateManifestSync:
			d.stats.Aborts++
			if err := d.out(ctx, ReqAbort, 0, nil, "ABORT"); err != nil {
				return cleared, err
			}
		case StateDnBusy, StateManifest:
			if err := sleep(ctx, max(st.PollTimeout, 10*time.Millisecond)); err != nil {
				return cleared, err
			}
		case StateAppIdle, StateAppDetach:
			return cleared, fmt.Errorf("dfu: %s is in run-time mode (%s): detach it into DFU mode first", d.conn.Info(), st.State)
		case StateManifestWaitReset:
			return cleared, transient("dfu: %s installed its firmware and waits for a USB reset (%s); reset it and connect again", d.conn.Info(), st.State)
		default:
			return cleared, fmt.Errorf("dfu: %s is in %s, which DFU 1.1 does not define; power-cycle it in DFU mode", d.conn.Info(), st.State)
		}
	}
	st, err := d.getStatus(ctx)
	if err != nil {
		return cleared, err
	}
	if st.State != StateIdle || st.Status != StatusOK {
		return cleared, transient("dfu: %s stays in %s (%s) after CLRSTATUS and ABORT; power-cycle it in DFU mode and flash again", d.conn.Info(), st.State, st.Status)
	}
	return cleared, nil
}

// isStall says whether err is a stalled request or a device error a retry may clear.
func isStall(err error) bool {
	var de *DeviceError
	if errors.As(err, &de) {
		return de.Transient()
	}
	return errors.Is(err, ErrStall)
}
