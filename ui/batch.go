//go:build cgo

package ui

import (
	"context"
	"sync"
	"time"

	"fyne.io/fyne/v2/data/binding"

	"github.com/fieldflash/fieldflash/app"
)

// The steps the update screen lists, in order: verify and identify are the session's,
// the rest the engine's.
var stepList = []struct {
	Step  app.Step
	Title string
}{
	{"verify", "Verify the bundle"},
	{"identify", "Identify the device"},
	{app.StepPreflight, "Preflight checks"},
	{app.StepTransfer, "Transfer"},
	{app.StepCheck, "Check on the device"},
	{app.StepActivate, "Activate (trial boot)"},
	{app.StepReset, "Reboot"},
	{app.StepProbe, "Health check"},
	{app.StepConfirm, "Confirm"},
}

// graphSamples is how many throughput samples the live graph keeps: one every 250 ms,
// so the last 10 s.
const graphSamples = 40

// Job is the update of one device. Its exported fields change only on the UI
// goroutine; Rev ticks after every change so that views redraw.
type Job struct {
	Port string // the row's key: a serial port, or a USB DFU device's key
	Name string
	// Where says where the device is (the port, or the USB ids and port); usb is the
	// device's app.USBDevice.Spec for a USB DFU device, "" for a serial port.
	Where string
	usb   string

	Step    app.Step
	Done    map[app.Step]bool
	Bytes   int64
	Total   int64
	Rate    float64
	ETA     time.Duration
	Waiting bool   // the device stopped answering; the engine waits and retries
	Line    string // the last thing that happened, in words
	// Warning: this hardware model's updates have failed often lately (the audit log's
	// anomaly rules); shown until the job ends.
	Warning string
	Rates   []float64
	Result  *app.FlashResult
	Explain *app.Explanation
	Running bool

	Rev binding.Int

	b      *Batch
	cancel context.CancelFunc
	// rec and hardware make the job a recovery (Session.Recover) instead of an update.
	rec      *app.Recovery
	hardware string

	mu        sync.Mutex
	pending   jobSnapshot
	scheduled bool
	lastRate  time.Time
}

// jobSnapshot is what device goroutines gather between two UI updates: a fast link
// reports thousands of chunks a second, the window needs a few dozen.
type jobSnapshot struct {
	step    app.Step
	done    []app.Step
	bytes   int64
	total   int64
	rate    float64
	eta     time.Duration
	waiting *bool
	line    string
	warning string
	name    string
}

// Batch is one press of Update: a Job per device, run in parallel.
type Batch struct {
	s    *State
	v    *app.Verified
	Jobs []*Job
}

func newBatch(s *State, v *app.Verified, ports []string) *Batch {
	b := &Batch{s: s, v: v}
	for _, p := range ports {
		name, where, usb := p, p, ""
		if r := s.Row(p); r != nil {
			name, where = r.Name(), r.Where()
			if r.USB != nil {
				usb = r.USB.Spec()
			}
		}
		j := &Job{Port: p, Name: name, Where: where, usb: usb, b: b, Rev: binding.NewInt()}
		j.reset()
		b.Jobs = append(b.Jobs, j)
	}
	return b
}

func (b *Batch) start() {
	for _, j := range b.Jobs {
		j.start()
	}
}

// Running says whether any device is still being updated.
func (b *Batch) Running() bool {
	for _, j := range b.Jobs {
		if j.Running {
			return true
		}
	}
	return false
}

// Failed are the jobs that ended without success.
func (b *Batch) Failed() []*Job {
	var out []*Job
	for _, j := range b.Jobs {
		if !j.Running && j.Result != nil && j.Result.Status != app.StatusOK {
			out = append(out, j)
		}
	}
	return out
}

// Passed counts the jobs that succeeded.
func (b *Batch) Passed() int {
	n := 0
	for _, j := range b.Jobs {
		if !j.Running && j.Result != nil && j.Result.Status == app.StatusOK {
			n++
		}
	}
	return n
}

// RetryFailed starts every failed job again; each resumes where its device stopped.
func (b *Batch) RetryFailed() {
	for _, j := range b.Failed() {
		j.Retry()
	}
}

// Cancel stops every job; each can be resumed.
func (b *Batch) Cancel() {
	for _, j := range b.Jobs {
		j.Cancel()
	}
}

// Job returns the job of port, or nil.
func (b *Batch) Job(port string) *Job {
	for _, j := range b.Jobs {
		if j.Port == port {
			return j
		}
	}
	return nil
}

func (j *Job) reset() {
	j.Step, j.Done = "identify", map[app.Step]bool{"verify": true}
	j.Bytes, j.Total, j.Rate, j.ETA, j.Waiting = 0, 0, 0, 0, false
	j.Line, j.Rates, j.Result, j.Explain = "Connecting to the device …", nil, nil, nil
	j.pending = jobSnapshot{}
}

func (j *Job) bump() {
	n, _ := j.Rev.Get()
	j.Rev.Set(n + 1)
	// The batch's own view (pass/fail counts, Retry the failed ones) follows every job.
	if j.b.s.batch() == j.b {
		n, _ := j.b.s.BatchRev.Get()
		j.b.s.BatchRev.Set(n + 1)
	}
	if t := j.b.s.trace; t != nil {
		t.job(j)
	}
}

// recoveryBatch is a batch of one: the recovery wizard's flash of a device found by a
// recovery probe.
func (s *State) recoveryBatch(v *app.Verified, rec *app.Recovery, hardware string) *Batch {
	key := rec.Port
	if rec.USB != nil {
		key = rec.USB.Key()
	}
	b := newBatch(s, v, []string{key})
	b.Jobs[0].rec, b.Jobs[0].hardware = rec, hardware
	return b
}

// Retry runs the job again: the engine resumes at the device's own offset.
func (j *Job) Retry() {
	if j.Running {
		return
	}
	j.reset()
	j.start()
}

// Cancel stops the job; the device keeps its current image and the update can resume.
func (j *Job) Cancel() {
	if j.cancel != nil {
		j.cancel()
	}
}

func (j *Job) start() {
	s := j.b.s
	ctx, cancel := context.WithCancel(s.ctx)
	j.cancel, j.Running = cancel, true
	s.hold(j.Port, true)
	j.bump()
	req := app.FlashRequest{Bundle: j.b.v, Port: j.Port, Baud: s.Settings.Baud, Protocol: s.Settings.Protocol,
		// A person at the window waits longer for a cable than a script does: a minute
		// and a half of tries, never more than 3 s apart, so a replugged cable is taken
		// up quickly.
		Retry: app.RetryPolicy{Initial: 300 * time.Millisecond, Max: 3 * time.Second, Tries: 30}}
	if s.opt.Retry != (app.RetryPolicy{}) {
		req.Retry = s.opt.Retry
	}
	if r := s.Row(j.Port); r != nil && r.USB != nil {
		j.usb = r.USB.Spec() // as it enumerates now (a retry may find it in another mode)
	}
	if j.usb != "" {
		req.USB, req.Protocol = j.usb, ""
	} else if r := s.Row(j.Port); r != nil && r.Probe != nil && r.Probe.Protocol != "" && req.Protocol == "" {
		req.Protocol = r.Probe.Protocol // it answered already: no second probe
	}
	req.DepartWait = s.opt.DepartWait
	go j.sample(ctx)
	s.goWork(func() {
		// A probe that started before the press still has the port open: two programs
		// on one serial line take each other's answers, so the update waits for it.
		s.waitProbe(ctx, j.Port)
		var res *app.FlashResult
		if j.rec != nil {
			req.Hardware = j.hardware
			res = s.Session.Recover(ctx, j.rec, req, j.event)
		} else {
			if req.USB == "" {
				req.Hardware = s.HardwareOf(j.Port) // off the label, for a device that does not say
			}
			res = s.Session.Flash(ctx, req, j.event)
		}
		cancel()
		s.do(func() {
			j.flush()
			ex := app.Explain(res)
			j.Result, j.Explain, j.Running, j.Waiting = res, &ex, false, false
			j.Line = ex.Headline
			if res.Status == app.StatusOK {
				j.Done[app.StepDone] = true
				j.Step = app.StepDone
			}
			s.hold(j.Port, false)
			s.Probe(j.Port) // show what it runs now
			j.bump()
		})
	})
}

// event takes an event of the device's session, on a device goroutine.
func (j *Job) event(ev app.Event) {
	j.mu.Lock()
	p := &j.pending
	switch ev.Kind {
	case app.KindIdentified:
		p.done = append(p.done, "identify")
		if ev.Identity != nil && ev.Identity.HardwareID != "" {
			p.name = ev.Identity.HardwareID
		}
		p.line = "The device answered: " + app.DescribeIdentity(ev.Identity, ev.Port)
	case app.KindPlanned:
		p.line = "Putting " + ev.Plan.Version + " on the device (" + ev.Plan.Target + ")"
	case app.KindResuming:
		p.line = "An earlier update stopped here; continuing where the device stopped"
	case app.KindStepStart:
		p.step = ev.Step
		if ev.Total > 0 {
			p.total = ev.Total
		}
		if ev.Message != "" {
			p.line = ev.Message
		}
		f := false
		p.waiting = &f
	case app.KindStepDone:
		p.done = append(p.done, ev.Step)
		if ev.Message != "" {
			p.line = ev.Message
		}
	case app.KindProgress:
		p.step, p.bytes, p.total, p.rate, p.eta = ev.Step, ev.Bytes, ev.Total, ev.Rate, ev.ETA
		f := false
		p.waiting = &f
		j.lastRate = time.Now()
	case app.KindRetry:
		t := true
		p.waiting = &t
		p.line = "Waiting for the device … " + ev.Message
	case app.KindNote, app.KindHint:
		p.line = ev.Message
	case app.KindAnomaly:
		p.warning = ev.Message
	case app.KindOutcome:
		if ev.Bytes > 0 {
			p.bytes = ev.Bytes
		}
	}
	if j.scheduled {
		j.mu.Unlock()
		return
	}
	j.scheduled = true
	j.mu.Unlock()
	// Coalesce: at most one UI update per 100 ms per device (ten a second), so that
	// several fast devices leave the draw loop its frames.
	time.AfterFunc(100*time.Millisecond, func() { j.b.s.do(j.flushAndBump) })
}

// sample adds a point to the throughput graph every 250 ms while the transfer runs. A
// device that sent nothing for a second (a pulled cable)
// counts as 0 B/s, so a stall shows as a drop to the floor.
func (j *Job) sample(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j.b.s.do(func() {
			if !j.Running || j.Step != app.StepTransfer {
				return
			}
			j.mu.Lock()
			quiet := time.Since(j.lastRate) > time.Second
			j.mu.Unlock()
			r := j.Rate
			if quiet || j.Waiting {
				r = 0
			}
			j.Rates = append(j.Rates, r)
			if len(j.Rates) > graphSamples {
				j.Rates = j.Rates[len(j.Rates)-graphSamples:]
			}
			j.bump()
		})
	}
}

func (j *Job) flushAndBump() {
	j.flush()
	j.bump()
}

// flush moves what device goroutines gathered into the job, on the UI goroutine.
func (j *Job) flush() {
	j.mu.Lock()
	p := j.pending
	j.pending = jobSnapshot{}
	j.scheduled = false
	j.mu.Unlock()
	for _, s := range p.done {
		j.Done[s] = true
	}
	if p.step != "" {
		j.Step = p.step
	}
	if p.name != "" {
		j.Name = p.name
	}
	if p.total > 0 {
		j.Total = p.total
	}
	if p.bytes > 0 {
		j.Bytes, j.Rate, j.ETA = p.bytes, p.rate, p.eta
	}
	if p.waiting != nil {
		j.Waiting = *p.waiting
	}
	if p.line != "" {
		j.Line = p.line
	}
	if p.warning != "" {
		j.Warning = p.warning
	}
}
