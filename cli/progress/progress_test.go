package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/app"
)

// transfer is what a technician's 100 KiB upload at 10 KiB/s reports, with one cable pull.
func transfer() []app.EngineEvent {
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	total := int64(100 << 10)
	evs := []app.EngineEvent{
		{Time: t0, Step: app.StepPreflight, Kind: app.KindStepStart, Message: "checking the device"},
		{Time: t0, Step: app.StepTransfer, Kind: app.KindStepStart, Message: "sending app.bin", Total: total},
	}
	for i := int64(1); i <= 400; i++ {
		b := i * 256
		evs = append(evs, app.EngineEvent{Time: t0.Add(time.Duration(i) * 25 * time.Millisecond), Step: app.StepTransfer, Kind: app.KindProgress,
			Bytes: b, Total: total, Rate: 10 << 10, ETA: time.Duration(total-b) * time.Second / (10 << 10)})
		if i == 200 {
			evs = append(evs,
				app.EngineEvent{Time: t0.Add(5 * time.Second), Step: app.StepTransfer, Kind: app.KindRetry, Message: "attempt 1 of 8 failed (EIO); trying again in 0.5s", Err: errors.New("EIO")},
				app.EngineEvent{Time: t0.Add(5 * time.Second), Step: app.StepTransfer, Kind: app.KindHint, Message: "Hold BOOT while plugging the USB cable back in, then run `fieldflash recover --port /dev/ttyACM0`"})
		}
	}
	o := &app.Outcome{Result: app.ResultConfirmed, Target: "app.bin", Version: "2.0.0", Bytes: total, Retries: 1, Duration: 11 * time.Second}
	return append(evs,
		app.EngineEvent{Time: t0.Add(10 * time.Second), Step: app.StepTransfer, Kind: app.KindStepDone, Message: "102400 bytes sent"},
		app.EngineEvent{Time: t0.Add(11 * time.Second), Step: app.StepConfirm, Kind: app.KindOutcome, Message: "confirmed", Outcome: o})
}

func TestPlainLinesForLogs(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Auto) // a buffer is no terminal: plain lines
	for _, e := range transfer() {
		r.Event(e)
	}
	s := out.String()
	if strings.Contains(s, "\r") || strings.Contains(s, "\x1b") {
		t.Fatalf("control characters in a log:\n%q", s)
	}
	progress := strings.Count(s, "% ")
	if progress < 10 || progress > 12 {
		t.Fatalf("%d progress lines, want one per 10 %%:\n%s", progress, s)
	}
	for _, want := range []string{" 50% 50.0 KiB / 100.0 KiB  10.0 KiB/s  5s left", "100% 100.0 KiB", ">> Hold BOOT", "retry: attempt 1 of 8", "result: confirmed (app.bin 2.0.0, 100.0 KiB sent in 11s, 1 retries)"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}

func TestBarRedrawsInPlaceAtMostTenTimesASecond(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Bar)
	for _, e := range transfer() {
		r.Event(e)
	}
	s := out.String()
	draws := strings.Count(s, "\r\x1b[K") // clears before other lines
	bars := strings.Count(s, "█") + strings.Count(s, "░")
	if bars == 0 || draws == 0 {
		t.Fatalf("no bar:\n%q", s)
	}
	redraws := strings.Count(s, "\rtransfer ")
	// 10 s of transfer at 10 redraws a second, plus the redraw after the hint and the last
	if redraws < 90 || redraws > 105 {
		t.Fatalf("%d redraws for 400 progress events over 10 s", redraws)
	}
	if !strings.Contains(s, "100%  100.0 KiB / 100.0 KiB  10.0 KiB/s  ETA 0s") {
		t.Fatalf("last bar missing:\n%q", s[len(s)-400:])
	}
}

func TestJSONLinesForScripts(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, JSON)
	evs := transfer()
	evs = append(evs, app.EngineEvent{Step: app.StepProbe, Kind: app.KindOutcome, Err: &app.FlashError{Code: app.CodeProbe, Reason: "booted 1.4.0"}})
	for _, e := range evs {
		r.Event(e)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	var last, outcome jsonEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Code != app.CodeProbe || last.Error != "booted 1.4.0" {
		t.Fatalf("last line %s", lines[len(lines)-1])
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-2]), &outcome); err != nil || outcome.Outcome == nil || outcome.Outcome.Result != app.ResultConfirmed {
		t.Fatalf("outcome line %s (%v)", lines[len(lines)-2], err)
	}
}

func TestHumanFigures(t *testing.T) {
	for n, want := range map[int64]string{812: "812 B", 12700: "12.4 KiB", 3250585: "3.1 MiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %s, want %s", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 185 * time.Second: "3m05s", 3720 * time.Second: "1h02m"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %s, want %s", d, got, want)
		}
	}
}
