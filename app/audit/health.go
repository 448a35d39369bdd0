package audit

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Health works from the log's own history: the success rate of updates per hardware model
// and per bundle, and the anomaly rules that warn a technician before the next update of
// a model whose updates have started to fail.

// Rate is the updates of one model or bundle in a period.
type Rate struct {
	Key      string  `json:"key"` // the hardware id, or the bundle's digest
	Label    string  `json:"label,omitempty"`
	Updates  int     `json:"updates"` // flashes and recoveries that reached the device: OK + Failed
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Refused  int     `json:"refused"`  // refused before anything was written (not in the rate)
	Canceled int     `json:"canceled"` // stopped by the person (not in the rate)
	Success  float64 `json:"success"`  // OK / Updates, 0 when there were none
}

// Stats is the health summary of a period.
type Stats struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Total    Rate      `json:"total"`
	ByModel  []Rate    `json:"by_model"`
	ByBundle []Rate    `json:"by_bundle"`
}

// isUpdate says whether e is a flash or a recovery.
func isUpdate(e *Entry) bool { return e.Kind == KindFlash || e.Kind == KindRecovery }

// countsAgainstDevice says whether a failed update says something about the device or its
// firmware: a port that would not open or a full disk does not.
func countsAgainstDevice(e *Entry) bool {
	switch e.ErrorClass {
	case "environment", "port", "journal", "io":
		return false
	}
	return true
}

// Summarize counts the updates in entries between since and until, in total, per hardware
// model and per bundle (by digest), busiest first.
func Summarize(entries []Entry, since, until time.Time) Stats {
	st := Stats{Since: since, Until: until, Total: Rate{Key: "all"}}
	models := map[string]*Rate{}
	bundles := map[string]*Rate{}
	add := func(r *Rate, e *Entry) {
		switch e.Outcome {
		case OutcomeOK:
			r.OK++
		case OutcomeFailed:
			r.Failed++
		case OutcomeRefused:
			r.Refused++
		case OutcomeCanceled:
			r.Canceled++
		}
	}
	for i := range entries {
		e := &entries[i]
		if !isUpdate(e) || e.Time.Before(since) || e.Time.After(until) {
			continue
		}
		add(&st.Total, e)
		hw := e.Hardware
		if hw == "" {
			hw = "(unknown)"
		}
		if models[hw] == nil {
			models[hw] = &Rate{Key: hw}
		}
		add(models[hw], e)
		if e.Digest != "" {
			if bundles[e.Digest] == nil {
				bundles[e.Digest] = &Rate{Key: e.Digest}
			}
			b := bundles[e.Digest]
			if e.Bundle != "" {
				b.Label = e.Bundle
			}
			add(b, e)
		}
	}
	finish := func(m map[string]*Rate) []Rate {
		out := make([]Rate, 0, len(m))
		for _, r := range m {
			out = append(out, *rate(r))
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Updates+out[i].Refused != out[j].Updates+out[j].Refused {
				return out[i].Updates+out[i].Refused > out[j].Updates+out[j].Refused
			}
			return out[i].Key < out[j].Key
		})
		return out
	}
	st.Total = *rate(&st.Total)
	st.ByModel = finish(models)
	st.ByBundle = finish(bundles)
	return st
}

func rate(r *Rate) *Rate {
	r.Updates = r.OK + r.Failed
	if r.Updates > 0 {
		r.Success = float64(r.OK) / float64(r.Updates)
	}
	return r
}

// Thresholds are the anomaly rules (docs/audit.md § Anomalies).
type Thresholds struct {
	// Window is how many of a model's most recent updates the share rule looks at.
	Window int `json:"window"`
	// MinUpdates is how many updates the window must hold before the share rule
	// speaks: two failures in two tries is bad luck as often as a pattern.
	MinUpdates int `json:"min_updates"`
	// FailShare: the share rule fires when more than this share of the window failed.
	FailShare float64 `json:"fail_share"`
	// Burst failures of one model within BurstWindow fire the burst rule, however many
	// succeeded around them.
	Burst       int           `json:"burst"`
	BurstWindow time.Duration `json:"burst_window"`
}

// DefaultThresholds: more than 30 % of the last 10 updates of a model failed (with at least
// 5 updates), or 3 failures of one model within an hour.
var DefaultThresholds = Thresholds{Window: 10, MinUpdates: 5, FailShare: 0.30, Burst: 3, BurstWindow: time.Hour}

// Anomaly is a spike of failures for one hardware model.
type Anomaly struct {
	Hardware string `json:"hardware"`
	Rule     string `json:"rule"` // "share" or "burst"
	Failures int    `json:"failures"`
	Of       int    `json:"of"` // updates looked at (share), or failures within Window (burst: = Failures)
	// Window is the period the failures fell in.
	Window time.Duration `json:"window_ns"`
	Text   string        `json:"text"`
}

// Rules for Anomaly.Rule.
const (
	RuleShare = "share"
	RuleBurst = "burst"
)

// FindAnomaly applies the thresholds to the updates of hardware in entries, as of now. It
// returns nil when neither rule fires. Only updates that reached the device count: a
// refusal, a cancel or a failure of the laptop's side (port, disk) says nothing about the
// model.
func FindAnomaly(entries []Entry, hardware string, now time.Time, th Thresholds) *Anomaly {
	if hardware == "" {
		return nil
	}
	var ups []*Entry
	for i := range entries {
		e := &entries[i]
		if !isUpdate(e) || e.Hardware != hardware || e.Time.After(now) {
			continue
		}
		if e.Outcome == OutcomeOK || e.Outcome == OutcomeFailed && countsAgainstDevice(e) {
			ups = append(ups, e)
		}
	}
	slices.SortStableFunc(ups, func(a, b *Entry) int { return a.Time.Compare(b.Time) })
	if th.Burst > 0 && th.BurstWindow > 0 {
		n := 0
		var first time.Time
		for _, e := range ups {
			if e.Outcome == OutcomeFailed && now.Sub(e.Time) <= th.BurstWindow {
				if n == 0 {
					first = e.Time
				}
				n++
			}
		}
		if n >= th.Burst {
			span := now.Sub(first)
			return &Anomaly{Hardware: hardware, Rule: RuleBurst, Failures: n, Of: n, Window: th.BurstWindow,
				Text: fmt.Sprintf("%d updates of %s failed in the last %s (the first %s ago)", n, hardware, humanWindow(th.BurstWindow), humanWindow(span))}
		}
	}
	if th.Window > 0 {
		last := ups
		if len(last) > th.Window {
			last = last[len(last)-th.Window:]
		}
		if len(last) >= max(th.MinUpdates, 1) {
			failed := 0
			for _, e := range last {
				if e.Outcome == OutcomeFailed {
					failed++
				}
			}
			if float64(failed) > th.FailShare*float64(len(last)) {
				return &Anomaly{Hardware: hardware, Rule: RuleShare, Failures: failed, Of: len(last), Window: now.Sub(last[0].Time),
					Text: fmt.Sprintf("%d of the last %d updates of %s failed (more than %.0f %%)", failed, len(last), hardware, th.FailShare*100)}
			}
		}
	}
	return nil
}

func humanWindow(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d >= time.Hour:
		return "hour"
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return fmt.Sprintf("%d seconds", int(d.Seconds()))
}
