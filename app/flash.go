package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
)

// Event kinds of a flash session beyond the engine's own (step-start, progress,
// step-done, retry, hint, outcome), which Event passes on as they come.
const (
	KindStepStart = flasher.KindStepStart
	KindProgress  = flasher.KindProgress
	KindStepDone  = flasher.KindStepDone
	KindRetry     = flasher.KindRetry
	KindHint      = flasher.KindHint
	KindOutcome   = flasher.KindOutcome

	// KindBegin: the session starts on the device (the first event of Flash).
	KindBegin Kind = "begin"
	// KindIdentified: the device answered; Identity says what it is.
	KindIdentified Kind = "identified"
	// KindPlanned: the target that fits the device was picked; Plan says which.
	KindPlanned Kind = "planned"
	// KindResuming: an earlier run of the same update stopped; Earlier is its journal.
	KindResuming Kind = "resuming"
	// KindNote: a line worth showing among the engine's (Step and Message), such as a
	// device that came back after a pulled cable.
	KindNote Kind = "note"
)

// Event is one thing a flash session reports. The engine's fields (Step, Kind, Bytes,
// Total, Rate, ETA, Message, Err, Outcome) are those of the engine's event; the others
// are set for the session's own kinds. Events of one device arrive in order, one at a
// time, possibly on a goroutine of the driver: a face hands them on and never blocks.
type Event struct {
	flasher.Event
	// Port is the device's port: with FlashAll, events of several devices interleave.
	Port     string
	Identity *flasher.Identity     // KindIdentified
	Plan     *PlanSummary          // KindPlanned
	Earlier  *flasher.JournalEntry // KindResuming
	Warning  *HealthWarning        // KindAnomaly
}

// PlanSummary is what an update will put on the device.
type PlanSummary struct {
	Target         string   `json:"target"`
	Version        string   `json:"version"`
	ReleaseCounter uint64   `json:"release_counter"`
	Size           int64    `json:"size"`
	Slot           int      `json:"slot"`
	Protocol       string   `json:"protocol"`
	HardwareID     string   `json:"hardware_id"`
	Notes          []string `json:"notes,omitempty"`
}

// FlashRequest is one update of one device.
type FlashRequest struct {
	Bundle   *Verified
	Target   string // the bundle's target to flash; "" picks the one that fits the device
	Port     string
	Baud     int    // 0: DefaultBaud
	Protocol string // "smp" or "ymodem"; "" probes the port
	// Hardware is the device's hardware id, for bootloaders that cannot say it
	// (recovery); it must agree when the device does say it.
	Hardware string
	Retry    RetryPolicy // zero: the engine's default
	// JournalDir overrides the session's journal directory.
	JournalDir string
	// USB flashes a USB DFU device instead of a serial port: "VID:PID[,SERIAL]", or "auto"
	// for the one connected DFU device the bundle's targets fit.
	USB string
	// DepartWait is how long a USB DFU device that left the bus after the download (for an
	// application that does not speak DFU) may take to come back before it counts as
	// running its new image; zero: the engine's 10 s.
	DepartWait time.Duration
}

// FlashResult is what one update did.
type FlashResult struct {
	Port     string            `json:"port"`
	Protocol string            `json:"protocol,omitempty"`
	Hardware string            `json:"hardware_id,omitempty"`
	Before   *flasher.Identity `json:"before,omitempty"`
	Target   string            `json:"target,omitempty"`
	Version  string            `json:"version,omitempty"`
	Outcome  *flasher.Outcome  `json:"outcome,omitempty"`
	// Resumes are the offsets the device reported holding when a transfer (re)started
	// in this run: more than one means a cable pull in the middle was survived.
	Resumes []int64 `json:"resumes,omitempty"`
	Err     error   `json:"-"`
	Status  Status  `json:"status"`
}

// RunningBefore is the version the device ran when the update started.
func (r *FlashResult) RunningBefore() string { return RunningVersion(r.Before) }

// AfterStop says what is known of the device after a run that stopped before its end
// (interrupted, or failed with the device touched), and no more: a bootloader that writes
// as it receives (MCUboot serial recovery, a classic bootloader) no longer holds its old
// image once a transfer began, and once a trial boot was armed the device may run the new
// image until its next reset. Only an application that took the upload into its second
// slot keeps running its current image for sure.
func (r *FlashResult) AfterStop() string {
	step := Step("")
	sent := false
	if r.Outcome != nil {
		step, sent = r.Outcome.Step, r.Outcome.Bytes > 0
	}
	inPlace := r.Before != nil && (r.Before.Mode == ModeRecovery || r.Before.Mode == ModeBootloader)
	begun := sent || (step != "" && step != StepPreflight)
	switch {
	case inPlace && begun:
		return "the bootloader writes the image as it receives it, so the device now holds a partial image and stays in its bootloader; run the same command again to finish"
	case inPlace && step == "":
		return "if a transfer had begun, the bootloader holds a partial image and the device stays in it; run the same command again to finish"
	case step == StepReset || step == StepProbe || step == StepConfirm || step == StepRevert:
		return "the device may be running the new image on trial; unless the update is finished it goes back to its current image at its next reset; run the same command again to finish"
	case !begun && step != "":
		return "nothing was written to the device; run the same command again"
	}
	return "the device keeps running its current image; run the same command again to resume"
}

// Flash updates the device on req.Port: probe (unless req.Protocol is set), identify,
// plan (refusing what does not fit: hardware, rollback, requirements, slot size),
// journal, then the engine's run, reconnecting after a pulled cable and resuming where
// the device stopped. events (may be nil) hears every step. It never returns nil.
//
// Once the device said what it is, its hardware model's recent history is checked and a
// spike of failures is reported as a KindAnomaly event before anything is planned. The
// update is recorded in the audit log (and queued as telemetry when the person agreed).
func (s *Session) Flash(ctx context.Context, req FlashRequest, events func(Event)) *FlashResult {
	return s.flash(ctx, req, events, audit.KindFlash)
}

func (s *Session) flash(ctx context.Context, req FlashRequest, events func(Event), kind audit.Kind) *FlashResult {
	if req.JournalDir == "" {
		req.JournalDir = s.JournalDir()
	}
	start := time.Now()
	observe := func(ev Event) {
		if events != nil {
			events(ev)
		}
		if ev.Kind == KindIdentified && ev.Identity != nil {
			hw := ev.Identity.HardwareID
			if hw == "" {
				hw = req.Hardware
			}
			if w := s.CheckHealth(hw); w != nil && events != nil {
				events(Event{Event: flasher.Event{Kind: KindAnomaly, Time: time.Now(),
					Message: w.Text + ": check the batch, the cable and the power before going on"}, Port: req.Port, Warning: w})
			}
		}
	}
	res := runFlash(ctx, req, observe)
	s.recordFlash(kind, req, res, time.Since(start))
	return res
}

// FlashAll updates several devices at once, one session per port, and returns their
// results in the order of reqs. Events carry their Port; events must be safe to call
// from several goroutines.
func (s *Session) FlashAll(ctx context.Context, reqs []FlashRequest, events func(Event)) []*FlashResult {
	out := make([]*FlashResult, len(reqs))
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.Flash(ctx, reqs[i], events)
		}()
	}
	wg.Wait()
	return out
}

func runFlash(ctx context.Context, req FlashRequest, events func(Event)) *FlashResult {
	if req.Baud == 0 {
		req.Baud = DefaultBaud
	}
	emit := func(ev Event) {
		if events != nil {
			if ev.Port == "" {
				ev.Port = req.Port
			}
			if ev.Time.IsZero() {
				ev.Time = time.Now()
			}
			events(ev)
		}
	}
	emit(Event{Event: flasher.Event{Kind: KindBegin}})
	res := &FlashResult{Port: req.Port, Protocol: req.Protocol}
	fail := func(st Status, err error) *FlashResult {
		res.Err, res.Status = err, st
		if ctx.Err() != nil && st != StatusRefused {
			res.Status = StatusCanceled
		}
		return res
	}
	if req.USB != "" {
		return runFlashUSB(ctx, req, emit, fail, res)
	}
	// The SMP transport the device answered on (console or raw UART), once known: a
	// reconnect after the reset need not find it again.
	transport := ""
	if req.Protocol == "" {
		pr, err := ProbePort(ctx, req.Port, req.Baud, nil)
		if err != nil {
			return fail(StatusEnvironment, err)
		}
		if pr.Protocol == "" {
			return fail(StatusDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: "port " + req.Port,
				Reason: "nothing answered as an SMP (MCUmgr) device or a YMODEM bootloader", Next: SilentHint("", req.Port)})
		}
		req.Protocol = pr.Protocol
		res.Protocol = req.Protocol
		if pr.Identity != nil {
			transport = pr.Identity.Transport
		}
	}
	d, err := openDriver(req.Port, req.Baud, req.Protocol, transport)
	if err != nil {
		return fail(StatusEnvironment, err)
	}
	// Identify on this driver even after a probe: a driver learns from it what the device
	// offers (the YMODEM driver offers check and reset only after it saw a banner), and
	// the engine reads the driver's capabilities before its own identify.
	id, err := d.Identify(ctx)
	if err == nil && !answered(id) {
		err = errors.New("no banner and no request for a file")
	}
	if err != nil {
		d.Close()
		return fail(StatusDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: "device on " + req.Port,
			Reason: fmt.Sprintf("does not answer as a %s device: %v", ProtocolName(req.Protocol), err), Next: SilentHint(req.Protocol, req.Port), Err: err})
	}
	emit(Event{Event: flasher.Event{Kind: KindIdentified}, Identity: id})
	transport = id.Transport
	res.Before = id

	devID := deviceID(id, req.Hardware, req.Port)
	var resumeMu sync.Mutex
	watch := func(d flasher.Driver) flasher.Driver {
		return &watchedDriver{Driver: d, onResume: func(off int64) {
			resumeMu.Lock()
			res.Resumes = append(res.Resumes, off)
			n := len(res.Resumes)
			resumeMu.Unlock()
			// The engine announces the resume point of a run's first attempt; one after a
			// reconnect in the middle is worth a line too.
			if n > 1 && off > 0 {
				emit(Event{Event: flasher.Event{Step: flasher.StepTransfer, Kind: KindNote,
					Message: fmt.Sprintf("the device is back and holds %d bytes; resuming there", off)}})
			}
		}}
	}
	plan, err := flasher.NewPlan(req.Bundle, req.Target, id, flasher.PlanOptions{
		Protocol: req.Protocol, HardwareID: req.Hardware, Device: devID, Port: req.Port, Retry: req.Retry,
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			d, err := openDriver(req.Port, req.Baud, req.Protocol, transport)
			if err != nil {
				return nil, err
			}
			if y, ok := d.(*ymodemDriver); ok {
				// The banner tells the new driver that check and reset are offered.
				y.Identify(ctx)
			}
			return watch(d), nil
		},
	})
	if err != nil {
		d.Close()
		return fail(planStatus(err), err)
	}
	defer plan.Close()
	res.Target, res.Version, res.Hardware = plan.Target.Path, plan.Target.Meta.Version, plan.HardwareID
	emit(Event{Event: flasher.Event{Kind: KindPlanned}, Plan: &PlanSummary{
		Target: plan.Target.Path, Version: plan.Target.Meta.Version, ReleaseCounter: plan.Target.Meta.ReleaseCounter,
		Size: plan.Image.Size, Slot: plan.Image.Slot, Protocol: plan.Protocol, HardwareID: plan.HardwareID, Notes: plan.Notes}})
	journal, err := flasher.OpenJournal(req.JournalDir, plan.JournalKey())
	if err != nil {
		d.Close()
		return fail(StatusEnvironment, err)
	}
	if prev := journal.Load(); prev != nil && !prev.Finished {
		emit(Event{Event: flasher.Event{Kind: KindResuming}, Earlier: prev})
	}
	o, err := flasher.Run(ctx, plan, watch(d), journal, func(ev flasher.Event) { emit(Event{Event: ev}) })
	res.Outcome, res.Err = o, err
	res.Status = outcomeStatus(ctx, o, err)
	return res
}

// deviceID is the journal's name for a device: its hardware id and its USB serial number
// where the port has one, else the port (a virtual or on-board port has no serial).
func deviceID(id *flasher.Identity, hardware, port string) string {
	hw := id.HardwareID
	if hw == "" {
		hw = hardware
	}
	if hw == "" {
		hw = id.Protocol
	}
	if ports, err := transports.List(); err == nil {
		want := resolvePath(port)
		for _, p := range ports {
			if p.SerialNumber != "" && resolvePath(p.Path) == want {
				return hw + "/" + p.SerialNumber
			}
		}
	}
	abs, err := filepath.Abs(port)
	if err != nil {
		abs = port
	}
	return hw + "@" + abs
}

// watchedDriver notes every resume offset the device reports, for the summary.
type watchedDriver struct {
	flasher.Driver
	onResume func(int64)
}

func (w *watchedDriver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	off, err := w.Driver.ResumeOffset(ctx, img)
	if err == nil {
		w.onResume(off)
	}
	return off, err
}

// openDriver opens the port and starts the protocol's driver on it. The driver owns the
// port: closing the driver closes it.
func openDriver(path string, baud int, protocol, transport string) (flasher.Driver, error) {
	p, err := serial.Open(path, baud)
	if err != nil {
		return nil, err
	}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		p.Close()
		return nil, fmt.Errorf("serial port %s: %v", path, err)
	}
	switch protocol {
	case "smp":
		return smp.New(p, smp.Options{Baud: baud, Transport: transport}), nil
	case "ymodem":
		return &ymodemDriver{Driver: ymodem.New(p, ymodem.Options{}), port: p}, nil
	}
	p.Close()
	return nil, fmt.Errorf("protocol %q: fieldflash speaks smp and ymodem", protocol)
}

// ymodemDriver closes its port: the ymodem driver leaves it to its owner, and the engine
// closes drivers, not ports.
type ymodemDriver struct {
	*ymodem.Driver
	port serial.Port
}

func (y *ymodemDriver) Close() error {
	y.Driver.Close()
	return y.port.Close()
}

// bundleHardware lists the hardware ids the bundle has firmware for over protocol.
func bundleHardware(v *verify.Verified, protocol string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range v.Targets {
		ok := len(t.Meta.Protocol.Protocols) == 0
		for _, p := range t.Meta.Protocol.Protocols {
			ok = ok || p == protocol
		}
		if !ok {
			continue
		}
		for _, h := range t.Meta.HardwareIDs {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return out
}
