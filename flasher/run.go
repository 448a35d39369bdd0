package flasher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Result is how an update ended.
type Result string

// Results.
const (
	ResultConfirmed      Result = "confirmed"       // the new image runs and is permanent
	ResultInstalled      Result = "installed"       // the new image runs; the protocol has no confirm step
	ResultAlreadyCurrent Result = "already-current" // the device already ran the image, confirmed
	ResultReverted       Result = "reverted"        // the device is back on its previous image
	ResultNotConfirmed   Result = "not-confirmed"   // the device did not come back; it reverts at its next reset
	ResultFailed         Result = "failed"          // stopped before activation; the device runs what it ran
	ResultInterrupted    Result = "interrupted"     // cancelled or link lost; run again to resume
)

// Outcome is what a run did, for the CLI, the audit log and telemetry.
type Outcome struct {
	Result      Result        `json:"result"`
	Step        Step          `json:"step"` // the last step reached
	Target      string        `json:"target"`
	Version     string        `json:"version"`
	Device      string        `json:"device"`
	Bytes       int64         `json:"bytes"`        // payload bytes sent in this run
	ResumedFrom int64         `json:"resumed_from"` // device offset the transfer resumed at
	Retries     int           `json:"retries"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"duration"`
	Code        Code          `json:"code,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Running     string        `json:"running,omitempty"` // version the device reported last
}

// Run takes the device through the update: preflight, transfer, check, activate, reset,
// health probe, confirm, or revert. It never confirms before a probe passed and never
// erases the running slot. j may be nil (nothing persists); events may be nil.
//
// Run owns d: it closes it, and any driver Reconnect returned, before it returns. The
// Outcome is never nil; the error is nil only for ResultConfirmed, ResultInstalled and
// ResultAlreadyCurrent.
func Run(ctx context.Context, p *Plan, d Driver, j *Journal, events func(Event)) (*Outcome, error) {
	if j == nil {
		j = &Journal{entry: JournalEntry{Format: 1, Key: p.JournalKey(), Step: StepPreflight}}
	}
	r := &run{p: p, d: d, j: j, events: events, opt: p.Options}
	r.opt.fill(p.Protocol)
	r.now = r.opt.Now
	r.out = &Outcome{Target: p.Image.Name, Version: p.Image.Version, Device: p.Device, Started: r.now(), Step: StepPreflight}
	defer func() {
		if r.d != nil {
			r.d.Close()
		}
	}()
	err := r.run(ctx)
	return r.finish(err)
}

type run struct {
	p      *Plan
	d      Driver
	j      *Journal
	events func(Event)
	opt    PlanOptions
	now    func() time.Time
	caps   Capabilities
	out    *Outcome
	meter  rateMeter

	touched   bool // the device was written to: a failure from here on closes the journal
	relink    bool // the link dropped: reconnect before the next request
	hinted    bool // a recovery hint was shown for the current trouble
	finished  bool // the outcome is final: the journal is closed
	lastState imageState
	resume    Step // the step an open journal said the last run stopped at
}

func (r *run) emit(e Event) {
	if r.events == nil {
		return
	}
	e.Time = r.now()
	r.events(e)
}

func (r *run) stepStart(s Step, msg string) {
	r.out.Step = s
	r.emit(Event{Step: s, Kind: KindStepStart, Message: msg, Total: r.p.Image.Size})
}

func (r *run) stepDone(s Step, msg string) {
	r.emit(Event{Step: s, Kind: KindStepDone, Message: msg, Total: r.p.Image.Size})
}

// record journals a step change; a journal that cannot be written stops the run, since
// a crash would then lose the resume point.
func (r *run) record(s Step, acked int64) error {
	return r.j.Record(s, acked)
}

func (r *run) run(ctx context.Context) error {
	resume := StepPreflight
	if e := r.j.Load(); e != nil && !e.Finished {
		resume = e.Step
	}
	r.resume = resume
	if err := r.j.begin(r.p, r.now()); err != nil {
		return err
	}

	// Preflight: the right driver, the right device, and where the device stands.
	r.stepStart(StepPreflight, "checking the device")
	if r.d.Protocol() != r.p.Protocol {
		return &Error{Code: CodeProtocol, Thing: "driver", Reason: fmt.Sprintf("speaks %s, the plan is for %s", r.d.Protocol(), r.p.Protocol), Next: "this is a bug in the caller; report it"}
	}
	r.caps = r.d.Capabilities()
	id, err := r.identify(ctx, StepPreflight)
	if err != nil {
		return err
	}
	if id.HardwareID != "" && id.HardwareID != r.p.HardwareID {
		return &Error{Code: CodeWrongDevice, Thing: "device" + portSuffix(r.opt.Port), Reason: fmt.Sprintf("is hardware %s, the plan is for %s", id.HardwareID, r.p.HardwareID), Next: "connect the device the update was planned for"}
	}
	st := r.p.state(id)
	r.lastState = st
	if st.running && resume.order() < StepReset.order() && (st.confirmed || !r.caps.Confirm) {
		r.stepDone(StepPreflight, "the device already runs "+r.p.Image.Version)
		r.out.Result = ResultAlreadyCurrent
		r.out.Running = st.version
		return nil
	}
	if !st.running && id.ReleaseCounter != nil && r.p.Image.ReleaseCounter < *id.ReleaseCounter {
		return &Error{Code: CodeReleaseCounter, Thing: "target " + r.p.Image.Name, Reason: fmt.Sprintf("release counter %d is below the device's %d", r.p.Image.ReleaseCounter, *id.ReleaseCounter), Next: "use a newer bundle for this device"}
	}
	r.stepDone(StepPreflight, resumeMessage(resume))

	r.touched = true // from here on an outcome is about this update, whatever it is
	next := StepTransfer
	switch {
	case st.running:
		// A trial boot of this image is under way (an earlier run reset the device and
		// crashed before confirming): probe and confirm, do not upload again.
		next = StepProbe
	case resume == StepCheck || resume == StepActivate || resume == StepReset:
		next = StepCheck
	case resume == StepProbe || resume == StepConfirm || resume == StepRevert:
		if st.pending {
			next = StepReset // the reset never took effect
		} else {
			return r.bootedPrevious(st)
		}
	}

	if next == StepTransfer {
		if err := r.transfer(ctx, false); err != nil {
			return err
		}
		next = StepCheck
	}
	if next == StepCheck {
		if err := r.check(ctx); err != nil {
			return err
		}
		if err := r.activate(ctx); err != nil {
			return err
		}
		next = StepReset
	}
	if next == StepReset {
		if err := r.reset(ctx); err != nil {
			return err
		}
	}
	return r.probeAndConfirm(ctx)
}

func resumeMessage(resume Step) string {
	if resume == StepPreflight {
		return "device ready"
	}
	return "resuming an interrupted update at " + string(resume)
}

// transfer uploads the image from the device's own resume point, retrying link faults
// with backoff, then checks that the bytes sent are the bytes that were verified.
func (r *run) transfer(ctx context.Context, fromZero bool) error {
	size := r.p.Image.Size
	r.touched = true
	r.stepStart(StepTransfer, fmt.Sprintf("sending %s (%d bytes)", r.p.Image.Name, size))
	if err := r.record(StepTransfer, 0); err != nil {
		return err
	}
	first := true
	var acked int64
	err := r.retry(ctx, StepTransfer, func(ctx context.Context) (bool, error) {
		from := int64(0)
		if r.caps.Resume && !fromZero {
			// The resume probe may be the first chunk itself (SMP), which a device answers
			// only after erasing: it gets the first answer's allowance, not a request's.
			rctx, cancel := context.WithTimeout(ctx, r.firstAnswerWait())
			off, err := r.d.ResumeOffset(rctx, &r.p.Image)
			cancel()
			if err != nil {
				return false, err
			}
			if off > 0 && off <= size {
				from = off
			}
		}
		fromZero = false
		if first {
			r.out.ResumedFrom = from
			first = false
			if from > 0 {
				r.emit(Event{Step: StepTransfer, Kind: KindProgress, Bytes: from, Total: size, Message: fmt.Sprintf("the device holds %d bytes from an earlier attempt; resuming there", from)})
			} else if r.resume == StepTransfer && !r.caps.Resume {
				r.emit(Event{Step: StepTransfer, Kind: KindProgress, Total: size, Message: "an earlier transfer was interrupted, and this device cannot resume one (" + r.p.Protocol + "): sending the image again from byte 0"})
			}
		}
		start := from
		r.meter.reset(r.now(), from)
		got, err := r.write(ctx, from, func(a int64) {
			acked = a
			_ = r.record(StepTransfer, a) // a journal write failing mid-transfer is caught at the next step change
			rate := r.meter.add(r.now(), a)
			var eta time.Duration
			if rate > 0 {
				eta = time.Duration(float64(size-a) / rate * float64(time.Second))
			}
			r.emit(Event{Step: StepTransfer, Kind: KindProgress, Bytes: a, Total: size, Rate: rate, ETA: eta})
		})
		if got > start {
			r.out.Bytes += got - start
		}
		acked = max(acked, got)
		if err == nil && got < size {
			err = &linkError{fmt.Errorf("the device acknowledged %d of %d bytes", got, size)}
		}
		return got > start, err
	})
	if err != nil {
		return err
	}
	if err := r.record(StepTransfer, size); err != nil {
		return err
	}
	if err := r.p.source.Verify(); err != nil {
		// Only what is known is said: a bootloader that writes as it receives (a classic
		// one, MCUboot serial recovery) already holds the bytes that were sent.
		reason := err.Error() + "; nothing was activated, and the device still runs its current image"
		next := "copy the bundle again from a trusted source and flash it again"
		if m := r.p.From.Mode; m == ModeRecovery || m == ModeBootloader {
			reason = err.Error() + "; this bootloader writes the image as it receives it, so the slot it wrote may hold bytes that were not verified"
			next = "do not restart the device; flash it again at once from a fresh, verified copy of the bundle (`fieldflash recover` with the bundle)"
		}
		return &Error{Code: CodeBundleChanged, Thing: "image " + r.p.Image.Name, Reason: reason, Next: next, Err: err}
	}
	r.stepDone(StepTransfer, fmt.Sprintf("%d bytes sent", r.out.Bytes))
	return nil
}

// linkError marks an error as a link fault worth a retry.
type linkError struct{ error }

func (e *linkError) Transient() bool { return true }
func (e *linkError) Unwrap() error   { return e.error }

var errStalled = &linkError{errors.New("no progress")}

// write runs one Write with a watchdog that cancels it when the device stops
// acknowledging for StallTimeout.
func (r *run) write(ctx context.Context, from int64, progress func(int64)) (int64, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(r.firstAnswerWait(), func() { cancel(errStalled) })
	defer stall.Stop()
	got, err := r.d.Write(wctx, &r.p.Image, from, func(a int64) {
		stall.Reset(r.opt.StallTimeout)
		progress(a)
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errStalled) {
		err = &linkError{fmt.Errorf("the device acknowledged nothing for %s at byte %d: %w", r.opt.StallTimeout, got, err)}
	}
	return got, err
}

// firstAnswerWait bounds the wait for the first answer of a transfer: a device erases
// before it answers its first chunk (stock Zephyr the pages the image covers, MCUboot
// serial recovery its whole slot: seconds on parts with 128 KiB sectors), and the
// driver's own timeouts allow for that; the watchdog waits three stall timeouts.
func (r *run) firstAnswerWait() time.Duration {
	return max(r.opt.RequestTimeout, 3*r.opt.StallTimeout)
}

// request runs one request with the per-request timeout.
func (r *run) request(ctx context.Context, f func(ctx context.Context) (int64, error)) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, r.opt.RequestTimeout)
	defer cancel()
	return f(rctx)
}

func (r *run) do(ctx context.Context, step Step, f func(ctx context.Context) error) error {
	return r.retry(ctx, step, func(ctx context.Context) (bool, error) {
		_, err := r.request(ctx, func(ctx context.Context) (int64, error) { return 0, f(ctx) })
		return false, err
	})
}

// retry runs attempt until it succeeds, fails for good, or link faults exhaust the
// budget. An attempt that made progress (bytes acknowledged) refills the budget: a flaky
// cable that drops every few seconds still gets the image across.
func (r *run) retry(ctx context.Context, step Step, attempt func(ctx context.Context) (progressed bool, err error)) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.opt.Retry.Initial,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         r.opt.Retry.Max,
	}
	b.Reset()
	var failures uint
	for {
		if r.relink {
			if err := r.reconnect(ctx); err != nil {
				if ctx.Err() != nil {
					return r.cancelled(ctx, step)
				}
				// the port is not back yet: counts as a failed attempt
				failures++
				if failures >= r.opt.Retry.Tries {
					return r.lost(step, err)
				}
				if err := r.pause(ctx, step, b, failures, err); err != nil {
					return err
				}
				continue
			}
		}
		progressed, err := attempt(ctx)
		if err == nil {
			r.hinted = false
			return nil
		}
		if ctx.Err() != nil {
			return r.cancelled(ctx, step)
		}
		if !IsTransient(err) {
			return r.refused(step, err)
		}
		if progressed {
			failures = 0
			b.Reset()
		}
		failures++
		r.relink = r.opt.Reconnect != nil
		if failures >= r.opt.Retry.Tries {
			return r.lost(step, err)
		}
		if err := r.pause(ctx, step, b, failures, err); err != nil {
			return err
		}
	}
}

func (r *run) pause(ctx context.Context, step Step, b *backoff.ExponentialBackOff, failures uint, cause error) error {
	wait := b.NextBackOff()
	r.out.Retries++
	r.emit(Event{Step: step, Kind: KindRetry, Err: cause, Message: fmt.Sprintf("attempt %d of %d failed (%v); trying again in %s", failures, r.opt.Retry.Tries, cause, wait.Round(time.Millisecond))})
	if failures >= 2 && !r.hinted {
		r.hinted = true
		r.emit(Event{Step: step, Kind: KindHint, Message: RecoveryHint(r.p.Protocol, r.opt.Port)})
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return r.cancelled(ctx, step)
	}
}

func (r *run) reconnect(ctx context.Context) error {
	if r.d != nil {
		r.d.Close()
		r.d = nil
	}
	d, err := r.opt.Reconnect(ctx)
	if err != nil {
		return err
	}
	r.d = d
	r.relink = false
	return nil
}

func (r *run) cancelled(ctx context.Context, step Step) error {
	return &Error{Code: CodeCancelled, Thing: "update of " + r.p.Device, Reason: "cancelled during " + string(step),
		Next: "run the same update again to resume where it stopped", Err: context.Cause(ctx)}
}

func (r *run) lost(step Step, err error) error {
	return &Error{Code: CodeDeviceLost, Thing: "device " + r.p.Device + portSuffix(r.opt.Port),
		Reason: fmt.Sprintf("stopped answering during %s after %d attempts: %v", step, r.opt.Retry.Tries, err),
		Next:   RecoveryHint(r.p.Protocol, r.opt.Port) + "; then run the same update again to resume", Err: err}
}

func (r *run) refused(step Step, err error) error {
	if CodeOf(err) != "" {
		return err
	}
	next := "note the message for support; the device still runs its current image unless it was reset"
	if m := r.p.From.Mode; (m == ModeRecovery || m == ModeBootloader) && step != StepPreflight {
		// A bootloader that writes as it receives no longer holds the old image.
		next = "note the message for support; this bootloader writes the image as it receives it, so the device may hold a partial image: flash it again before restarting it"
	}
	return &Error{Code: CodeDevice, Thing: "device " + r.p.Device, Reason: fmt.Sprintf("refused %s: %v", step, err),
		Next: next, Err: err}
}

func (r *run) identify(ctx context.Context, step Step) (*Identity, error) {
	var id *Identity
	err := r.do(ctx, step, func(ctx context.Context) error {
		var err error
		id, err = r.d.Identify(ctx)
		if err == nil && id == nil {
			err = errors.New("identify returned nothing")
		}
		return err
	})
	return id, err
}

// check asks the device whether it holds the image whole. A device that holds something
// else gets one fresh upload from byte 0: a resumed upload may have joined bytes from
// an older attempt.
func (r *run) check(ctx context.Context) error {
	if !r.caps.Check {
		if cr, ok := r.d.(CheckReporter); ok {
			r.stepStart(StepCheck, "how the device checks the image")
			r.stepDone(StepCheck, cr.CheckReport())
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		r.stepStart(StepCheck, "asking the device to check the image")
		if err := r.record(StepCheck, r.p.Image.Size); err != nil {
			return err
		}
		err := r.do(ctx, StepCheck, func(ctx context.Context) error { return r.d.Check(ctx, &r.p.Image) })
		if err == nil {
			msg := "the device holds the image whole"
			if cr, ok := r.d.(CheckReporter); ok {
				msg = cr.CheckReport()
			}
			r.stepDone(StepCheck, msg)
			return nil
		}
		if c := CodeOf(err); c == CodeCancelled || c == CodeDeviceLost || attempt > 0 {
			if c == CodeDevice {
				return &Error{Code: CodeCheck, Thing: "device " + r.p.Device, Reason: "does not hold the image whole after a fresh upload: " + errors.Unwrap(err).Error(), Next: "the device's flash may be failing; nothing was activated; contact support", Err: err}
			}
			return err
		}
		r.emit(Event{Step: StepCheck, Kind: KindRetry, Err: err, Message: "the device's copy differs from the image; sending it again from the start"})
		if err := r.transfer(ctx, true); err != nil {
			return err
		}
	}
}

// activate marks the image for a trial boot, where the driver offers one. Drivers without
// a trial boot (YMODEM, DFU) have the device take the image by itself.
func (r *run) activate(ctx context.Context) error {
	if !r.caps.Test {
		return nil
	}
	r.stepStart(StepActivate, "marking the image for a trial boot")
	if err := r.record(StepActivate, r.p.Image.Size); err != nil {
		return err
	}
	if err := r.do(ctx, StepActivate, func(ctx context.Context) error { return r.d.Activate(ctx, &r.p.Image) }); err != nil {
		return err
	}
	r.stepDone(StepActivate, "the device will boot the new image once, on trial")
	return nil
}

// reset reboots the device into the new image. A link that drops while the device
// answers is what a reset looks like on USB: the probe tells whether it happened.
func (r *run) reset(ctx context.Context) error {
	r.stepStart(StepReset, "restarting the device")
	if err := r.record(StepReset, r.p.Image.Size); err != nil {
		return err
	}
	if r.caps.Reset {
		rctx, cancel := context.WithTimeout(ctx, r.opt.RequestTimeout)
		err := r.d.Reset(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return r.cancelled(ctx, StepReset)
		case err != nil && IsTransient(err):
			r.relink = r.opt.Reconnect != nil
		case err != nil:
			return r.refused(StepReset, err)
		}
	} else {
		r.emit(Event{Step: StepReset, Kind: KindHint, Message: "Waiting for the device to start the new image by itself; if it has not within a minute, power-cycle it (unplug it and plug it back in)"})
	}
	if err := r.record(StepProbe, r.p.Image.Size); err != nil {
		return err
	}
	r.relink = r.relink || r.opt.Reconnect != nil
	r.stepDone(StepReset, "")
	return nil
}

// probe waits for the device to come back and report the new image running.
type probeFailure struct {
	code   Code
	reason string
	state  imageState
	seen   bool // the device answered at least once
}

func (r *run) probe(ctx context.Context) (*Identity, *probeFailure, error) {
	r.stepStart(StepProbe, "waiting for the device to come back with the new image")
	pctx, cancel := context.WithTimeout(ctx, r.opt.ProbeTimeout)
	defer cancel()
	b := r.pollBackoff()
	fail := &probeFailure{code: CodeProbe, reason: fmt.Sprintf("did not answer within %s after the reset", r.opt.ProbeTimeout)}
	hinted := false
	started := r.now()
	for {
		var id *Identity
		var err error
		if r.caps.Departs && !fail.seen && r.now().Sub(started) >= r.opt.DepartWait {
			// The device left after the reset and has not come back on this protocol: it
			// runs its application, which cannot be asked which image it is.
			r.stepDone(StepProbe, fmt.Sprintf("the device left %s mode after the reset and did not come back within %s: it runs its application (which cannot be asked for its version over %s)", r.p.Protocol, r.opt.DepartWait, r.p.Protocol))
			return &Identity{Protocol: r.p.Protocol, Mode: ModeApplication}, nil, nil
		}
		if r.relink {
			rc, rcancel := pctx, context.CancelFunc(func() {})
			if r.caps.Departs && !fail.seen {
				// Wait for the device to come back no longer than DepartWait in all.
				rc, rcancel = context.WithTimeout(pctx, r.opt.DepartWait-r.now().Sub(started))
			}
			err = r.reconnect(rc)
			rcancel()
			if err != nil && pctx.Err() == nil {
				err = &linkError{err}
			}
		}
		if err == nil {
			rctx, rcancel := context.WithTimeout(pctx, r.opt.RequestTimeout)
			id, err = r.d.Identify(rctx)
			rcancel()
		}
		if err == nil && id != nil {
			fail.seen = true
			st := r.p.state(id)
			fail.state = st
			r.lastState = st
			switch {
			case st.running:
				if r.opt.Health != nil {
					if herr := r.opt.Health(pctx, id); herr != nil {
						fail.reason = "runs the new image, but its health check failed: " + herr.Error()
						fail.state.unhealthy = true
						return id, fail, nil
					}
				}
				r.stepDone(StepProbe, "the device runs "+r.p.Image.Version)
				return id, nil, nil
			case id.Mode == ModeRecovery || st.pending:
				// still in the bootloader, or not rebooted yet: keep waiting
			case st.known:
				// It booted, and not into the new image: the bootloader rejected or
				// reverted it. Waiting longer changes nothing.
				fail.reason = "booted " + orUnknown(st.version) + " instead of " + r.p.Image.Version
				return id, fail, nil
			default:
				// The device cannot say which image runs: that it answers is all we learn.
				r.stepDone(StepProbe, "the device answers (it does not report its version)")
				return id, nil, nil
			}
		} else if err != nil && IsTransient(err) {
			r.relink = r.opt.Reconnect != nil
		}
		if ctx.Err() != nil {
			return nil, nil, r.cancelled(ctx, StepProbe)
		}
		if !hinted && r.now().Sub(started) > r.opt.ProbeTimeout/2 {
			hinted = true
			r.emit(Event{Step: StepProbe, Kind: KindHint, Message: "The device has not come back yet. Leave it powered and connected; " + RecoveryHint(r.p.Protocol, r.opt.Port)})
		}
		if !sleepCtx(pctx, b.NextBackOff()) {
			if ctx.Err() != nil {
				return nil, nil, r.cancelled(ctx, StepProbe)
			}
			return nil, fail, nil
		}
	}
}

// pollBackoff paces the asks while a device comes back after a reset.
func (r *run) pollBackoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: r.opt.Retry.Initial, RandomizationFactor: backoff.DefaultRandomizationFactor, Multiplier: 1.5, MaxInterval: 2 * time.Second}
	b.Reset()
	return b
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func orUnknown(v string) string {
	if v == "" {
		return "another image"
	}
	return v
}

func (r *run) probeAndConfirm(ctx context.Context) error {
	if err := r.record(StepProbe, r.p.Image.Size); err != nil {
		return err
	}
	id, fail, err := r.probe(ctx)
	if err != nil {
		return err
	}
	if fail != nil {
		return r.revert(ctx, fail)
	}
	r.out.Running = r.p.state(id).version
	if !r.caps.Confirm {
		r.out.Result = ResultInstalled
		return nil
	}
	r.stepStart(StepConfirm, "making the new image permanent")
	if err := r.record(StepConfirm, r.p.Image.Size); err != nil {
		return err
	}
	if err := r.do(ctx, StepConfirm, func(ctx context.Context) error { return r.d.Confirm(ctx, &r.p.Image) }); err != nil {
		if c := CodeOf(err); c != CodeCancelled && c != CodeDeviceLost {
			// The trial boot stays unconfirmed: the bootloader goes back at the next
			// reset, or a later run confirms it.
			r.out.Result = ResultNotConfirmed
			r.emit(Event{Step: StepConfirm, Kind: KindHint, Message: unconfirmedHint(r.p.Protocol, r.opt.Port)})
		}
		return err
	}
	r.stepDone(StepConfirm, r.p.Image.Version+" is permanent")
	r.out.Result = ResultConfirmed
	return nil
}

// revert handles a failed probe. A device in a trial boot that is not confirmed goes back
// by itself at its next reset; one running the new image unhealthy is sent back now.
func (r *run) revert(ctx context.Context, fail *probeFailure) error {
	r.out.Running = fail.state.version
	thing := "device " + r.p.Device + portSuffix(r.opt.Port)
	if !fail.seen {
		r.out.Result = ResultNotConfirmed
		if !r.caps.Test {
			r.out.Result = ResultFailed
			r.emit(Event{Step: StepProbe, Kind: KindHint, Message: RecoveryHint(r.p.Protocol, r.opt.Port)})
			return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason, Next: RecoveryHint(r.p.Protocol, r.opt.Port)}
		}
		r.emit(Event{Step: StepProbe, Kind: KindHint, Message: unconfirmedHint(r.p.Protocol, r.opt.Port)})
		return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; the new image was not confirmed", Next: unconfirmedHint(r.p.Protocol, r.opt.Port)}
	}
	if !fail.state.unhealthy {
		return r.bootedPrevious(fail.state)
	}
	// The new image runs but is unhealthy: never confirm it; send the device back.
	r.stepStart(StepRevert, "the new image failed its health check; going back to the previous image")
	if err := r.record(StepRevert, r.p.Image.Size); err != nil {
		return err
	}
	var err error
	switch {
	case r.caps.Revert:
		err = r.do(ctx, StepRevert, func(ctx context.Context) error { return r.d.Revert(ctx) })
		if err == nil && r.caps.Reset {
			err = r.resetQuietly(ctx)
		}
	case r.caps.Test && r.caps.Reset:
		// Without a confirm, the bootloader reverts a trial boot at the next reset.
		err = r.resetQuietly(ctx)
	default:
		r.out.Result = ResultFailed
		return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; this protocol cannot go back to the previous image", Next: "flash the previous release from its bundle"}
	}
	if err != nil {
		r.out.Result = ResultNotConfirmed
		return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; sending it back failed: " + err.Error(), Next: unconfirmedHint(r.p.Protocol, r.opt.Port), Err: err}
	}
	if r.caps.Reset && r.caps.Test {
		// Seen, not assumed: the bootloader swaps the previous image back at the reset.
		st, err := r.awaitPrevious(ctx)
		if err != nil {
			r.out.Result = ResultNotConfirmed
			return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; the device was reset to go back, but " + err.Error(), Next: unconfirmedHint(r.p.Protocol, r.opt.Port), Err: err}
		}
		r.out.Running = st.version
		r.stepDone(StepRevert, "the device runs its previous image "+orUnknown(st.version)+" again")
		r.out.Result = ResultReverted
		return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; the device went back to its previous image " + orUnknown(st.version) + " and the new one was not confirmed", Next: "report the release to the release team with the device's log"}
	}
	r.stepDone(StepRevert, "the device was sent back to its previous image")
	r.out.Result = ResultReverted
	return &Error{Code: CodeProbe, Thing: thing, Reason: fail.reason + "; the device was sent back to its previous image and the new one was not confirmed", Next: "report the release to the release team with the device's log"}
}

// awaitPrevious waits, up to ProbeTimeout, for the device to come back after the revert's
// reset and report an image other than the new one running: a device still on the new
// image has not rebooted yet (an application stops a moment after it answers the reset).
func (r *run) awaitPrevious(ctx context.Context) (imageState, error) {
	pctx, cancel := context.WithTimeout(ctx, r.opt.ProbeTimeout)
	defer cancel()
	b := r.pollBackoff()
	last := "it did not answer"
	for {
		var err error
		if r.relink {
			err = r.reconnect(pctx)
		}
		if err == nil {
			rctx, rcancel := context.WithTimeout(pctx, r.opt.RequestTimeout)
			var id *Identity
			id, err = r.d.Identify(rctx)
			rcancel()
			if err == nil && id != nil {
				st := r.p.state(id)
				switch {
				case st.known && !st.running && !st.pending && id.Mode != ModeRecovery:
					return st, nil
				case !st.known:
					return st, nil // it cannot say which image runs: that it answers is all
				case st.running:
					last = "it still runs the new image " + r.p.Image.Version + " unconfirmed"
				}
			}
		}
		if err != nil && IsTransient(err) {
			r.relink = r.opt.Reconnect != nil
		}
		if !sleepCtx(pctx, b.NextBackOff()) {
			if ctx.Err() != nil {
				return imageState{}, r.cancelled(ctx, StepRevert)
			}
			return imageState{}, fmt.Errorf("%s %s later", last, r.opt.ProbeTimeout)
		}
	}
}

func (r *run) resetQuietly(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, r.opt.RequestTimeout)
	defer cancel()
	err := r.d.Reset(rctx)
	if err != nil && IsTransient(err) {
		r.relink = r.opt.Reconnect != nil
		return nil
	}
	return err
}

// bootedPrevious reports a device that came back on its previous image.
func (r *run) bootedPrevious(st imageState) error {
	r.out.Running = st.version
	r.out.Result = ResultReverted
	if !r.caps.Test {
		r.out.Result = ResultFailed
	}
	return &Error{Code: CodeProbe, Thing: "device " + r.p.Device + portSuffix(r.opt.Port),
		Reason: "booted " + orUnknown(st.version) + ", not the new image " + r.p.Image.Version + " (the bootloader rejected it or reverted its trial boot); nothing was confirmed",
		Next:   "the device is usable on its previous image; report the release to the release team with the device's boot log"}
}

// finish writes the outcome to the journal and tells the watchers. Interrupted updates
// keep their journal open so the next run resumes.
func (r *run) finish(err error) (*Outcome, error) {
	o := r.out
	o.Duration = r.now().Sub(o.Started)
	if err != nil {
		o.Code = CodeOf(err)
		o.Reason = err.Error()
		switch {
		case o.Code == CodeCancelled || o.Code == CodeDeviceLost || o.Code == CodeJournal:
			o.Result = ResultInterrupted
		case o.Result == "":
			o.Result = ResultFailed
		}
	}
	// A device left in a trial boot, or an interrupted transfer, resumes from the journal.
	// A refusal before the device was touched (the wrong device, a rollback) leaves the
	// journal as it was: it may hold another run's resume point.
	switch {
	case o.Result == ResultFailed && !r.touched:
	case o.Result == ResultInterrupted || o.Result == ResultNotConfirmed:
		r.j.mu.Lock()
		r.j.entry.Updated = time.Now()
		werr := r.j.writeLocked()
		r.j.mu.Unlock()
		if werr != nil && err == nil {
			err = werr
		}
	default:
		if werr := r.j.Finish(o); werr != nil && err == nil {
			err = werr
		}
	}
	r.emit(Event{Step: o.Step, Kind: KindOutcome, Message: string(o.Result), Err: err, Outcome: o, Bytes: o.Bytes, Total: r.p.Image.Size})
	return o, err
}

// imageState is where the planned image stands on a device, as its Identity tells.
type imageState struct {
	known     bool // the device says which image runs
	running   bool // the planned image runs
	confirmed bool // ... and is permanent
	pending   bool // the planned image is marked for the next boot
	version   string
	unhealthy bool
}

func (p *Plan) state(id *Identity) imageState {
	var st imageState
	for _, s := range id.Slots {
		if s.Image != p.Image.Slot {
			continue
		}
		st.known = true
		mine := p.isImage(s)
		if s.Active {
			st.version = s.Version
			if mine && id.Mode != ModeRecovery {
				st.running = true
				st.confirmed = s.Confirmed || s.Permanent
			}
		}
		if mine && s.Pending && !s.Active {
			st.pending = true
		}
	}
	if st.known {
		return st
	}
	if v, ok := id.Components[p.Image.Component]; ok && id.Mode != ModeRecovery {
		st.known = true
		st.version = v
		st.running = sameVersion(v, p.Image.Version)
		st.confirmed = st.running
	}
	return st
}

// isImage tells whether slot s holds the planned image: by hash where the device reports
// one (MCUboot reports its own image hash, not the file's), by version otherwise.
func (p *Plan) isImage(s Slot) bool {
	if len(s.Hash) > 0 {
		return bytes.Equal(s.Hash, p.Image.SHA256[:]) || (len(p.deviceHash) > 0 && bytes.Equal(s.Hash, p.deviceHash))
	}
	return s.Version != "" && sameVersion(s.Version, p.Image.Version)
}
