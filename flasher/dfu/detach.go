package dfu

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Reopen opens the same device again after it re-enumerated: the same serial number, or
// the same port when it has none. It waits until the device is there or ctx ends.
type Reopen func(ctx context.Context) (Conn, error)

// EnterDFUMode takes a device in run-time mode into DFU mode (DFU 1.1 section 5.1):
// DFU_DETACH, then a USB reset unless the device detaches by itself (bitWillDetach), then
// the wait for it to enumerate in DFU mode. conn is closed; the returned Conn is the
// device in DFU mode, remembering its run-time ids. A device already in DFU mode is
// returned as it is.
func EnterDFUMode(ctx context.Context, conn Conn, reopen Reopen) (Conn, error) {
	info := conn.Info()
	if !info.Runtime() {
		return conn, nil
	}
	if reopen == nil {
		return nil, fmt.Errorf("dfu: %s is in run-time mode and cannot be opened again after a detach; put it into DFU mode by hand (see its manual) and connect again", info)
	}
	// wValue is how long the device waits for the reset; dfu-util asks for 1 s.
	wait := info.Functional.DetachTimeout
	if wait <= 0 || wait > time.Second {
		wait = time.Second
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := conn.ControlOut(c, ReqDetach, uint16(wait/time.Millisecond), nil)
	cancel()
	if err != nil && !errors.Is(err, ErrGone) {
		conn.Close()
		return nil, fmt.Errorf("dfu: %s refused DFU_DETACH: %w; put it into DFU mode by hand (hold its BOOT button while plugging it in) and connect again", info, err)
	}
	if info.Functional.Attributes&AttrWillDetach == 0 && err == nil {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		if rerr := conn.Reset(c); rerr != nil && !errors.Is(rerr, ErrGone) {
			cancel()
			conn.Close()
			return nil, fmt.Errorf("dfu: %s: USB reset after DFU_DETACH: %w", info, rerr)
		}
		cancel()
	}
	conn.Close()
	// Re-enumeration takes the device's detach time plus the host's enumeration.
	deadline := time.Now().Add(10*time.Second + info.Functional.DetachTimeout)
	for {
		c, cancel := context.WithDeadline(ctx, deadline)
		next, err := reopen(c)
		cancel()
		if err == nil && !next.Info().Runtime() {
			ni := next.Info()
			ni.RuntimeVendorID, ni.RuntimeProductID = info.VendorID, info.ProductID
			return next, nil
		}
		if err == nil {
			next.Close() // still the old enumeration
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, &linkError{fmt.Errorf("dfu: %s did not come back in DFU mode within %s of DFU_DETACH: %w; unplug it, hold its BOOT button while plugging it back in, and flash again", info, time.Until(deadline).Round(time.Second)+10*time.Second, ErrGone)}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}
