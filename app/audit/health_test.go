package audit

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

// history builds a synthetic history of one model: outcomes "o" ok, "f" failed (device),
// "e" failed on the laptop's side, "r" refused, one every step.
func history(hw, outcomes string, start time.Time, step time.Duration) []Entry {
	var out []Entry
	for i, c := range outcomes {
		e := Entry{Kind: KindFlash, Hardware: hw, Time: start.Add(time.Duration(i) * step), Digest: "sha256:b1", Bundle: "b1.fwb"}
		switch c {
		case 'o':
			e.Outcome = OutcomeOK
		case 'f':
			e.Outcome, e.ErrorClass = OutcomeFailed, "check"
		case 'e':
			e.Outcome, e.ErrorClass = OutcomeFailed, "port"
		case 'r':
			e.Outcome, e.ErrorClass = OutcomeRefused, "hardware"
		}
		out = append(out, e)
	}
	return out
}

func TestAnomalyRulesOnSyntheticHistories(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name    string
		history []Entry
		rule    string
		text    string
	}{
		{"all good", history("gw", "oooooooooooo", t0, day), "", ""},
		{"3 of the last 10 failed is not more than 30 %", history("gw", "ooooofofoffoooo"[:10], t0, day), "", ""},
		{"4 of the last 10 failed", history("gw", "oooooooooofofoffoooo"[:20], t0, day), RuleShare, "4 of the last 10 updates of gw failed"},
		{"old failures scroll out of the window", history("gw", "ffffoooooooooo", t0, day), "", ""},
		{"too few updates for the share rule", history("gw", "ff", t0, day), "", ""},
		{"2 of 5 is more than 30 %", history("gw", "ooffo", t0, day), RuleShare, "2 of the last 5"},
		{"laptop-side failures and refusals do not count", history("gw", "oeeeeerrrrro", t0, day), "", ""},
		{"3 failures within an hour", history("gw", "ooooooooooooooofff", t0, 10*time.Minute), RuleBurst, "3 updates of gw failed in the last hour"},
		{"3 failures spread over 3 hours", history("gw", "ooooooooooooooooooofoooooofooooooooof", t0, 5*time.Minute), "", ""},
		{"another model's failures", history("other", "ffffffff", t0, time.Minute), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			last := c.history[len(c.history)-1].Time
			a := FindAnomaly(c.history, "gw", last.Add(time.Minute), DefaultThresholds)
			if c.rule == "" {
				if a != nil {
					t.Fatalf("anomaly %+v, want none", a)
				}
				return
			}
			if a == nil || a.Rule != c.rule || !strings.Contains(a.Text, c.text) {
				t.Fatalf("anomaly %+v, want rule %s with %q", a, c.rule, c.text)
			}
		})
	}
}

func TestAFailureBurstFadesAfterItsWindow(t *testing.T) {
	h := history("gw", "ooooooooooooooofff", t0, time.Minute)
	last := h[len(h)-1].Time
	if FindAnomaly(h, "gw", last.Add(30*time.Minute), DefaultThresholds) == nil {
		t.Fatal("burst not seen 30 min later")
	}
	if a := FindAnomaly(h, "gw", last.Add(2*time.Hour), DefaultThresholds); a != nil {
		t.Fatalf("2 hours later, with 3 of the last 10 failed: %+v", a)
	}
}

func TestHealthSummaryCountsPerModelAndBundle(t *testing.T) {
	h := history("gw", "oooof", t0, time.Hour)
	h = append(h, history("sensor", "ofrr", t0, time.Hour)...)
	h[0].Digest, h[0].Bundle = "sha256:b2", "b2.fwb"
	old := history("gw", "ffff", t0.Add(-40*24*time.Hour), time.Hour) // outside the 30 days
	h = append(h, old...)
	h = append(h, Entry{Kind: KindVerification, Outcome: OutcomeOK, Time: t0, Digest: "sha256:b1"})
	st := Summarize(h, t0.Add(-30*24*time.Hour), t0.Add(24*time.Hour))
	if st.Total.Updates != 7 || st.Total.OK != 5 || st.Total.Refused != 2 {
		t.Fatalf("total %+v", st.Total)
	}
	if len(st.ByModel) != 2 || st.ByModel[0].Key != "gw" || st.ByModel[0].Success != 0.8 || st.ByModel[1].Success != 0.5 {
		t.Fatalf("by model %+v", st.ByModel)
	}
	if len(st.ByBundle) != 2 || st.ByBundle[0].Key != "sha256:b1" || st.ByBundle[0].Updates != 6 || st.ByBundle[1].Label != "b2.fwb" {
		t.Fatalf("by bundle %+v", st.ByBundle)
	}
}

func TestTheRecentEndOfALongLogIsEnoughForTheRules(t *testing.T) {
	path, _ := writeLog(t, 2000)
	all, _, _ := ReadFile(path, nil)
	recent, err := ReadRecent(path, 64<<10)
	if err != nil || len(recent) < 50 || len(recent) >= len(all) {
		t.Fatalf("%d recent of %d: %v", len(recent), len(all), err)
	}
	if last := recent[len(recent)-1]; last.Seq != 2000 || recent[0].Seq != all[len(all)-len(recent)].Seq {
		t.Fatalf("recent runs %d..%d", recent[0].Seq, last.Seq)
	}
	if whole, _ := ReadRecent(path, 1<<40); len(whole) != len(all) {
		t.Fatalf("a window larger than the file: %d of %d", len(whole), len(all))
	}
}
