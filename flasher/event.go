package flasher

import (
	"math"
	"time"
)

// Step is one state of the update.
type Step string

// The steps, in the order a full run takes them. Drivers without Test/Confirm skip
// Activate and Confirm: the device boots the new image by itself after Reset.
const (
	StepPreflight Step = "preflight"
	StepTransfer  Step = "transfer"
	StepCheck     Step = "check"
	StepActivate  Step = "activate"
	StepReset     Step = "reset"
	StepProbe     Step = "probe"
	StepConfirm   Step = "confirm"
	StepRevert    Step = "revert"
	StepDone      Step = "done"
)

// order ranks steps so a journal can say which lie behind.
func (s Step) order() int {
	switch s {
	case StepPreflight:
		return 0
	case StepTransfer:
		return 1
	case StepCheck:
		return 2
	case StepActivate:
		return 3
	case StepReset:
		return 4
	case StepProbe:
		return 5
	case StepConfirm:
		return 6
	case StepRevert:
		return 7
	case StepDone:
		return 8
	}
	return -1
}

// Kind says what an Event reports.
type Kind string

// Event kinds.
const (
	KindStepStart Kind = "step-start"
	KindProgress  Kind = "progress"
	KindStepDone  Kind = "step-done"
	KindRetry     Kind = "retry"
	KindHint      Kind = "hint"    // the next concrete thing the user should do
	KindOutcome   Kind = "outcome" // the last event of a run
)

// Event is what the engine tells whoever watches: the GUI, the CLI progress bar, the audit
// log and telemetry. Events arrive in order, one at a time; progress may come from a
// driver's goroutine, so the callback should hand events on rather than block.
type Event struct {
	Time    time.Time     `json:"time"`
	Step    Step          `json:"step"`
	Kind    Kind          `json:"kind"`
	Bytes   int64         `json:"bytes,omitempty"` // acknowledged by the device
	Total   int64         `json:"total,omitempty"`
	Rate    float64       `json:"rate,omitempty"` // bytes/s, smoothed
	ETA     time.Duration `json:"eta,omitempty"`
	Message string        `json:"message,omitempty"`
	Err     error         `json:"-"`
	// Outcome is set on the KindOutcome event.
	Outcome *Outcome `json:"outcome,omitempty"`
}

// rateMeter smooths the transfer rate with an exponential moving average over time, so a
// bar neither jumps on every chunk nor lags a link that changed speed for good.
type rateMeter struct {
	last      time.Time
	lastBytes int64
	rate      float64
}

// halfLife is how long a rate takes to count for half of the smoothed figure.
const halfLife = 2 * time.Second

func (m *rateMeter) reset(now time.Time, bytes int64) {
	m.last, m.lastBytes, m.rate = now, bytes, 0
}

func (m *rateMeter) add(now time.Time, bytes int64) float64 {
	dt := now.Sub(m.last)
	if dt <= 0 || bytes < m.lastBytes {
		m.lastBytes = bytes
		return m.rate
	}
	inst := float64(bytes-m.lastBytes) / dt.Seconds()
	if m.rate == 0 {
		m.rate = inst
	} else {
		// weight of the new sample grows with the time it covers
		w := 1 - pow2(-dt.Seconds()/halfLife.Seconds())
		m.rate += w * (inst - m.rate)
	}
	m.last, m.lastBytes = now, bytes
	return m.rate
}

func pow2(x float64) float64 { return math.Exp2(x) }
