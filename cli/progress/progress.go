// Package progress shows an update's events in a terminal: a live bar with bytes, rate
// and time left when the output is a terminal, plain lines when it is a file or a pipe
// (CI logs, `| tee`), and one JSON object per line with --json for scripts.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/fieldflash/fieldflash/app"
)

// Mode is how events are shown.
type Mode int

// Modes.
const (
	Auto  Mode = iota // Bar on a terminal, Lines otherwise
	Bar               // a bar redrawn in place
	Lines             // plain lines, progress every 10 %
	JSON              // one JSON object per event
)

// Renderer writes events to a terminal or a log: the CLI's printer of the engine's
// events that app.Event carries.
type Renderer struct {
	mu       sync.Mutex
	w        io.Writer
	mode     Mode
	width    int
	lastDraw time.Time
	barShown bool
	lastPct  int
}

// New returns a renderer writing to w. width is the bar's width in columns (0: 30).
func New(w io.Writer, mode Mode) *Renderer {
	if mode == Auto {
		mode = Lines
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = Bar
		}
	}
	return &Renderer{w: w, mode: mode, width: 30, lastPct: -1}
}

// Event shows one event.
func (r *Renderer) Event(e app.EngineEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case JSON:
		r.json(e)
	case Bar:
		r.bar(e)
	default:
		r.line(e)
	}
}

type jsonEvent struct {
	Time    time.Time     `json:"time"`
	Step    app.Step      `json:"step"`
	Kind    app.Kind      `json:"kind"`
	Bytes   int64         `json:"bytes,omitempty"`
	Total   int64         `json:"total,omitempty"`
	Rate    float64       `json:"rate,omitempty"`
	ETAms   int64         `json:"eta_ms,omitempty"`
	Message string        `json:"message,omitempty"`
	Error   string        `json:"error,omitempty"`
	Code    app.FlashCode `json:"code,omitempty"`
	Outcome *app.Outcome  `json:"outcome,omitempty"`
}

func (r *Renderer) json(e app.EngineEvent) {
	j := jsonEvent{Time: e.Time.UTC(), Step: e.Step, Kind: e.Kind, Bytes: e.Bytes, Total: e.Total, Rate: e.Rate,
		ETAms: e.ETA.Milliseconds(), Message: e.Message, Outcome: e.Outcome}
	if e.Err != nil {
		j.Error = e.Err.Error()
		j.Code = app.CodeOfFlash(e.Err)
	}
	b, _ := json.Marshal(j)
	r.w.Write(append(app.JSON(b), '\n'))
}

// text is the one-line description of an event that is not progress. Messages carry what
// devices and bundles said (names, versions, errors), so they are escaped; the layout is
// this program's.
func text(e app.EngineEvent) string {
	e.Message = app.Text(e.Message)
	switch e.Kind {
	case app.KindStepStart:
		return fmt.Sprintf("%-9s %s", e.Step, e.Message)
	case app.KindStepDone:
		if e.Message == "" {
			return fmt.Sprintf("%-9s done", e.Step)
		}
		return fmt.Sprintf("%-9s done: %s", e.Step, e.Message)
	case app.KindRetry:
		return fmt.Sprintf("%-9s retry: %s", e.Step, e.Message)
	case app.KindHint:
		return "\n  >> " + e.Message + "\n"
	case app.KindOutcome:
		s := "result: " + e.Message
		if o := e.Outcome; o != nil {
			s = app.Sprintf("result: %s (%s %s, %s sent in %s", o.Result, o.Target, o.Version, Bytes(o.Bytes), o.Duration.Round(100*time.Millisecond))
			if o.ResumedFrom > 0 {
				s += fmt.Sprintf(", resumed at %s", Bytes(o.ResumedFrom))
			}
			if o.Retries > 0 {
				s += fmt.Sprintf(", %d retries", o.Retries)
			}
			s += ")"
		}
		if e.Err != nil {
			s += "\n" + app.Text(e.Err.Error())
		}
		return s
	}
	return fmt.Sprintf("%-9s %s", e.Step, e.Message)
}

func (r *Renderer) line(e app.EngineEvent) {
	if e.Kind != app.KindProgress {
		fmt.Fprintln(r.w, text(e))
		return
	}
	if e.Total <= 0 {
		return
	}
	pct := int(e.Bytes * 100 / e.Total)
	if e.Message != "" || pct/10 != r.lastPct/10 || pct == 100 && r.lastPct != 100 {
		r.lastPct = pct
		s := fmt.Sprintf("%-9s %3d%% %s / %s", e.Step, pct, Bytes(e.Bytes), Bytes(e.Total))
		if e.Rate > 0 {
			s += fmt.Sprintf("  %s/s  %s left", Bytes(int64(e.Rate)), Duration(e.ETA))
		}
		if e.Message != "" {
			s += "  " + app.Text(e.Message)
		}
		fmt.Fprintln(r.w, s)
	}
}

func (r *Renderer) bar(e app.EngineEvent) {
	if e.Kind != app.KindProgress {
		if r.barShown {
			fmt.Fprint(r.w, "\r\x1b[K")
			r.barShown = false
		}
		fmt.Fprintln(r.w, text(e))
		return
	}
	if e.Total <= 0 {
		return
	}
	// Redraw at most ten times a second: a fast link reports thousands of chunks.
	if r.barShown && e.Bytes < e.Total && e.Time.Sub(r.lastDraw) < 100*time.Millisecond {
		return
	}
	r.lastDraw = e.Time
	frac := float64(e.Bytes) / float64(e.Total)
	full := int(frac * float64(r.width))
	bar := strings.Repeat("█", full) + strings.Repeat("░", r.width-full)
	s := fmt.Sprintf("\r%-9s %s %3d%%  %s / %s", e.Step, bar, int(frac*100), Bytes(e.Bytes), Bytes(e.Total))
	if e.Rate > 0 {
		s += fmt.Sprintf("  %s/s  ETA %s", Bytes(int64(e.Rate)), Duration(e.ETA))
	}
	fmt.Fprint(r.w, s+"\x1b[K")
	r.barShown = true
}

// Bytes spells a byte count the way people read it: 812 B, 12.4 KiB, 3.1 MiB.
func Bytes(n int64) string { return app.Bytes(n) }

// Duration spells a time left: 45s, 3m05s, 1h02m.
func Duration(d time.Duration) string { return app.Duration(d) }
