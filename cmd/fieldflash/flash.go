package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/progress"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
)

func init() {
	register(&command{name: "flash", summary: "verify a bundle and update the device on a port; rerun to resume", run: cmdFlash})
}

const flashHelp = `
Verifies BUNDLE offline (as "fieldflash verify" does), opens the port, asks the device what
it is, picks the target that fits it (hardware id, release counter, requirements, slot
size) and takes it through the update: transfer, check, trial boot, reset, health probe,
confirm. The device keeps running its current image until the new one has booted and
answered; if anything fails it goes back to the old one.

A pulled cable is retried with backoff and the transfer continues where the device stopped.
Ctrl-C stops cleanly (exit 5); a journal under $FIELDFLASH_HOME/journal and the device's
own offset let the same command, run again, resume where it stopped.

Without --protocol the port is probed: SMP (MCUmgr) first, then a YMODEM bootloader.

Exit codes: 0 updated (or already current), 1 refused (bundle, wrong device, rollback;
the device was not written), 2 usage, 3 environment (bundle, port, $FIELDFLASH_HOME),
4 the device failed or stopped answering (run the same command again to resume, or see
the hint), 5 interrupted (run the same command again to resume).`

func cmdFlash(e *env, args []string) int {
	fs := newFlags(e, "flash", "BUNDLE.fwb --port PATH [options]", flashHelp)
	port := fs.String("port", "", "the `PATH` of the serial port the device is on, e.g. /dev/ttyACM0 or COM4 (fieldflash devices lists them)")
	protocol := fs.String("protocol", "", "smp or ymodem (default: probe the port)")
	baud := fs.Int("baud", serial.DefaultBaud, "baud rate of the port")
	target := fs.String("target", "", "the bundle's target to flash (default: the one that fits the device)")
	jsonOut := fs.Bool("json", false, "write events and the result as JSON lines (for scripts)")
	demo := fs.Bool("demo", false, "also trust the demo root (demo bundles, virtual devices only)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 || *port == "" {
		fmt.Fprintln(e.stderr, "fieldflash flash: give one bundle and the port, e.g. `fieldflash flash acme-7.2.fwb --port /dev/ttyACM0`")
		return exitUsage
	}
	if *protocol != "" && *protocol != "smp" && *protocol != "ymodem" {
		fmt.Fprintf(e.stderr, "fieldflash flash: --protocol %q: use smp or ymodem\n", *protocol)
		return exitUsage
	}
	if *demo {
		if err := requireVirtualPort(*port); err != nil {
			fmt.Fprintln(e.stderr, "✘ refused:", err)
			return exitRefused
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := openServices(*demo)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	opts := verify.Options{}
	s.apply(&opts)
	v, err := verify.VerifyFile(fs.Arg(0), opts)
	if err != nil {
		return reportRefusal(e, *jsonOut, err)
	}
	out := newFlashOutput(e, *jsonOut)
	out.say("✔ %s verified (repository %s, root v%d)\n", v.Bundle, v.Repository, v.RootVersion)
	j := &flashJob{
		verified: v, target: *target, port: *port, baud: *baud, protocol: *protocol,
		journalDir: filepath.Join(s.home, "journal"), out: out,
	}
	res := j.run(ctx)
	return out.finish(res)
}

// flashJob is one update of one device: what flash, recover and the demo run.
type flashJob struct {
	verified   *verify.Verified
	target     string
	port       string
	baud       int
	protocol   string // "" probes
	hardware   string // for devices that cannot say (recovery); must agree when they do
	journalDir string
	retry      flasher.RetryPolicy
	out        *flashOutput
	// identity, when set, is what a probe already learned (recover).
	identity *flasher.Identity
}

// flashResult is what a job did, for the summary and the exit code.
type flashResult struct {
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
	Exit    int     `json:"exit"`
}

func (r *flashResult) runningBefore() string { return runningVersion(r.Before) }

// runningVersion is the version of the image a device reports running.
func runningVersion(id *flasher.Identity) string {
	if id == nil {
		return "?"
	}
	for _, s := range id.Slots {
		if s.Active && s.Version != "" {
			return s.Version
		}
	}
	for _, s := range id.Slots {
		if s.Slot == 0 && s.Version != "" {
			return s.Version
		}
	}
	if v := id.Components["app"]; v != "" {
		return v
	}
	if v := id.Components["image0"]; v != "" {
		return v
	}
	return "unknown"
}

func (j *flashJob) run(ctx context.Context) *flashResult {
	res := &flashResult{Port: j.port, Protocol: j.protocol}
	fail := func(code int, err error) *flashResult {
		res.Err, res.Exit = err, code
		if ctx.Err() != nil && code != exitRefused {
			res.Exit = exitCanceled
		}
		return res
	}
	id := j.identity
	if j.protocol == "" {
		pr, err := probePort(ctx, j.port, j.baud, nil)
		if err != nil {
			return fail(exitEnv, err)
		}
		if pr.Protocol == "" {
			return fail(exitDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: "port " + j.port,
				Reason: "nothing answered as an SMP (MCUmgr) device or a YMODEM bootloader", Next: silentHint("", j.port)})
		}
		j.protocol, id = pr.Protocol, pr.Identity
		res.Protocol = j.protocol
	}
	d, err := openDriver(j.port, j.baud, j.protocol)
	if err != nil {
		return fail(exitEnv, err)
	}
	// Identify on this driver even after a probe: a driver learns from it what the device
	// offers (the YMODEM driver offers check and reset only after it saw a banner), and
	// the engine reads the driver's capabilities before its own identify.
	id, err = d.Identify(ctx)
	if err == nil && !answered(id) {
		err = errors.New("no banner and no request for a file")
	}
	if err != nil {
		d.Close()
		return fail(exitDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: "device on " + j.port,
			Reason: fmt.Sprintf("does not answer as a %s device: %v", protoName(j.protocol), err), Next: silentHint(j.protocol, j.port), Err: err})
	}
	if j.identity == nil { // recover has shown it already
		j.out.say("device  %s\n", describeIdentity(id, j.port))
	}
	res.Before = id

	devID := deviceID(id, j.hardware, j.port)
	resumes := &res.Resumes
	watch := func(d flasher.Driver) flasher.Driver {
		return &watchedDriver{Driver: d, onResume: func(off int64) {
			*resumes = append(*resumes, off)
			// The engine announces the resume point of a run's first attempt; one after a
			// reconnect in the middle is worth a line too.
			if len(*resumes) > 1 && off > 0 {
				j.out.note(flasher.StepTransfer, fmt.Sprintf("the device is back and holds %d bytes; resuming there", off))
			}
		}}
	}
	plan, err := flasher.NewPlan(j.verified, j.target, id, flasher.PlanOptions{
		Protocol: j.protocol, HardwareID: j.hardware, Device: devID, Port: j.port, Retry: j.retry,
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			d, err := openDriver(j.port, j.baud, j.protocol)
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
		return fail(planExit(err), err)
	}
	defer plan.Close()
	res.Target, res.Version, res.Hardware = plan.Target.Path, plan.Target.Meta.Version, plan.HardwareID
	j.out.say("plan    %s %s (release counter %d, %s) -> image %d over %s\n", plan.Target.Path, plan.Target.Meta.Version,
		plan.Target.Meta.ReleaseCounter, progress.Bytes(plan.Image.Size), plan.Image.Slot, strings.ToUpper(plan.Protocol))
	for _, n := range plan.Notes {
		j.out.say("note    %s\n", strings.ReplaceAll(strings.TrimSpace(n), "\n", "\n        "))
	}
	journal, err := flasher.OpenJournal(j.journalDir, plan.JournalKey())
	if err != nil {
		d.Close()
		return fail(exitEnv, err)
	}
	if prev := journal.Load(); prev != nil && !prev.Finished {
		j.out.say("resume  an earlier run stopped at %s with %s acknowledged; continuing from the device's own offset\n", prev.Step, progress.Bytes(prev.Acked))
	}
	o, err := flasher.Run(ctx, plan, watch(d), journal, j.out.event)
	res.Outcome, res.Err = o, err
	res.Exit = outcomeExit(ctx, o, err)
	return res
}

// answered says whether an identity came from a device that answered at all: a YMODEM
// port stays silent without error when nothing is there.
func answered(id *flasher.Identity) bool {
	return id != nil && (id.Protocol != "ymodem" || id.HardwareID != "" || id.Mode != "")
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

func resolvePath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
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
func openDriver(path string, baud int, protocol string) (flasher.Driver, error) {
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
		return smp.New(p, smp.Options{Baud: baud}), nil
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

func protoName(p string) string {
	switch p {
	case "smp":
		return "SMP (MCUmgr)"
	case "ymodem":
		return "YMODEM bootloader"
	}
	return p
}

func describeIdentity(id *flasher.Identity, port string) string {
	hw := id.HardwareID
	if hw == "" {
		hw = "(hardware id not reported)"
	}
	s := fmt.Sprintf("%s on %s: %s", hw, port, protoName(id.Protocol))
	if id.Mode != "" && id.Protocol != "ymodem" { // a YMODEM device always answers from its bootloader
		s += ", " + id.Mode
	}
	if id.Mode == flasher.ModeRecovery && id.Protocol == "smp" {
		s += ", primary slot holds " + runningVersion(id)
	} else {
		s += ", running " + runningVersion(id)
	}
	if id.Bootloader != "" {
		s += ", bootloader " + id.Bootloader
	}
	if id.ReleaseCounter != nil {
		s += fmt.Sprintf(", release counter %d", *id.ReleaseCounter)
	}
	return s
}

// planExit maps a refused plan to an exit code: the device was not written.
func planExit(err error) int {
	switch flasher.CodeOf(err) {
	case flasher.CodeJournal:
		return exitEnv
	case "":
		var ve *verify.Error
		if errors.As(err, &ve) {
			return exitRefused
		}
		return exitEnv
	}
	return exitRefused
}

// outcomeExit maps a run's outcome to the exit code of docs/cli.md.
func outcomeExit(ctx context.Context, o *flasher.Outcome, err error) int {
	if err == nil {
		return exitOK
	}
	code := flasher.CodeOf(err)
	if code == flasher.CodeJournal {
		// The journal could not be written ($FIELDFLASH_HOME full or read-only): fix that
		// first; the engine stops rather than flash without a way to resume.
		return exitEnv
	}
	switch o.Result {
	case flasher.ResultInterrupted:
		if code == flasher.CodeCancelled || ctx.Err() != nil {
			return exitCanceled
		}
		return exitDevice
	case flasher.ResultFailed:
		switch code {
		case flasher.CodeHardware, flasher.CodeWrongDevice, flasher.CodeReleaseCounter, flasher.CodeRequirement,
			flasher.CodeSlotSize, flasher.CodeProtocol, flasher.CodeNoTarget, flasher.CodeBundleChanged:
			return exitRefused
		case flasher.CodeJournal:
			return exitEnv
		case flasher.CodeCancelled:
			return exitCanceled
		}
	}
	return exitDevice
}

// flashOutput is where a job's story goes: text and a progress bar or lines for people,
// JSON lines for scripts.
type flashOutput struct {
	e        *env
	json     bool
	quiet    bool // the demo's --json: nothing but the final document
	renderer *progress.Renderer
	onEvent  func(flasher.Event) // the demo's summary follows the events
}

func newFlashOutput(e *env, jsonOut bool) *flashOutput {
	mode := progress.Auto
	if jsonOut {
		mode = progress.JSON
	}
	return &flashOutput{e: e, json: jsonOut, renderer: progress.New(e.stdout, mode)}
}

func (o *flashOutput) say(format string, a ...any) {
	if o.json || o.quiet {
		return
	}
	fmt.Fprintf(o.e.stdout, format, a...)
}

func (o *flashOutput) event(ev flasher.Event) {
	if o.onEvent != nil {
		o.onEvent(ev)
	}
	if o.quiet {
		return
	}
	o.renderer.Event(ev)
}

// note shows a line of the CLI's own among the engine's events (not in JSON: scripts get
// only the engine's event kinds).
func (o *flashOutput) note(step flasher.Step, msg string) {
	if o.json || o.quiet || o.renderer == nil {
		return
	}
	o.renderer.Event(flasher.Event{Time: time.Now(), Step: step, Kind: "note", Message: msg})
}

// finish prints the result and returns the exit code.
func (o *flashOutput) finish(r *flashResult) int {
	if o.json {
		doc := map[string]any{"ok": r.Exit == exitOK, "exit": r.Exit, "port": r.Port, "protocol": r.Protocol}
		if r.Before != nil {
			doc["device"] = r.Before
		}
		if r.Outcome != nil {
			doc["outcome"] = r.Outcome
		}
		if r.Err != nil {
			doc["error"] = r.Err.Error()
			doc["code"] = errCode(r.Err)
			if next := errNext(r.Err); next != "" {
				doc["next"] = next
			}
		}
		writeJSONLine(o.e.stdout, doc)
		if r.Err != nil {
			fmt.Fprintln(o.e.stderr, "fieldflash:", r.Err)
		}
		return r.Exit
	}
	switch {
	case r.Exit == exitOK && r.Outcome != nil:
		oc := r.Outcome
		switch oc.Result {
		case flasher.ResultAlreadyCurrent:
			fmt.Fprintf(o.e.stdout, "✔ the device already runs %s %s; nothing to do\n", oc.Target, oc.Version)
		default:
			fmt.Fprintf(o.e.stdout, "✔ %s on %s now runs %s (%s; was %s)\n", r.Hardware, r.Port, oc.Version, oc.Result, r.runningBefore())
		}
	case r.Exit == exitCanceled:
		if r.Outcome != nil && !o.quiet {
			fmt.Fprintf(o.e.stderr, "✘ interrupted during %s\n", r.Outcome.Step)
		} else {
			fmt.Fprintln(o.e.stderr, "✘ interrupted:", errText(r.Err))
		}
		fmt.Fprintln(o.e.stderr, "  the device keeps running its current image; run the same command again to resume")
	case r.Exit == exitRefused:
		fmt.Fprintln(o.e.stderr, "✘ refused:", o.reason(r))
		if r.Outcome == nil || r.Outcome.Bytes == 0 {
			fmt.Fprintln(o.e.stderr, "  nothing was written to the device")
		}
	default:
		fmt.Fprintln(o.e.stderr, "✘", o.reason(r))
		if r.Exit == exitDevice {
			fmt.Fprintln(o.e.stderr, "  run the same command again to resume once the device answers")
		}
	}
	return r.Exit
}

// reason is the error for stderr. When the run's outcome line already printed it with
// its next step (the progress output), stderr gets the short form.
func (o *flashOutput) reason(r *flashResult) string {
	var fe *flasher.Error
	if r.Outcome != nil && !o.quiet && errors.As(r.Err, &fe) {
		return fmt.Sprintf("%s (%s at %s)", r.Outcome.Result, fe.Code, r.Outcome.Step)
	}
	return errText(r.Err)
}

func errText(err error) string {
	if err == nil {
		return "stopped"
	}
	return err.Error()
}

func errCode(err error) string {
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
	return "environment"
}

func errNext(err error) string {
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
