//go:build cgo

package ui

import (
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/app/audit"
)

// A support engineer opens the audit log after an update: the update is there, the chain
// verifies, and the health summary counts it.
func TestAuditScreenShowsTheUpdateVerifiesAndSummarises(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	h.waitDevicesKnown()
	h.st.Toggle(h.demo.Devices[0].Path(), true)
	h.nav("update")
	h.tap("Update")
	h.waitText("Updated: the device runs 1.1.0")
	h.nav("audit")
	h.waitText("the chain is intact")
	h.waitText("flash: ok")
	h.waitText("1.0.0 -> 1.1.0 · confirmed")
	h.waitText(app.SimHardwareSMP + ": 100 % succeeded (1 of 1)")
	h.tap("Verify the chain")
	h.waitText("entries; the chain is intact.")
}

// Before the next update of a model whose updates failed three times within the hour,
// the update's card warns the technician.
func TestAFailureSpikeWarnsOnTheUpdateCard(t *testing.T) {
	h := newHarness(t, true, 0, Options{})
	home, _ := app.Home()
	l, err := audit.Open(app.AuditPath(filepath.Join(home, "demo")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Append(audit.Entry{Kind: audit.KindFlash, Time: time.Now().Add(-time.Duration(20-i) * time.Minute), Hardware: app.SimHardwareSMP,
			Outcome: audit.OutcomeFailed, ErrorClass: "check"})
	}
	l.Close()
	h.waitDevicesKnown()
	h.st.Toggle(h.demo.Devices[0].Path(), true)
	h.nav("update")
	h.tap("Update")
	h.waitText("⚠ 3 updates of " + app.SimHardwareSMP + " failed in the last hour")
	h.waitText("Updated: the device runs 1.1.0")
}

// The first run asks about telemetry in a row under the title, without blocking the
// window; the answer is kept, and the telemetry screen switches it off again.
func TestTheFirstRunAsksAboutTelemetryAndTheSwitchTurnsItOff(t *testing.T) {
	t.Setenv("FIELDFLASH_TELEMETRY", "")
	h := newHarness(t, false, 0, Options{})
	h.waitText("May fieldflash send anonymous usage reports")
	h.tap("Send reports")
	if h.shows("May fieldflash send anonymous usage reports") {
		t.Fatal("the question stays after the answer")
	}
	set, _ := app.LoadTelemetrySettings(h.st.Home())
	if set.Consent != app.ConsentOn || set.AnsweredBy != "question" {
		t.Fatalf("settings after yes: %+v", set)
	}
	h.nav("telemetry")
	h.waitText("Telemetry on · 0 events waiting, nothing sent yet")
	h.check("Send anonymous usage reports") // already on: stays
	for _, o := range h.objects() {
		if c, ok := o.(*widget.Check); ok && c.Text == "Send anonymous usage reports" {
			test.Tap(c) // off
		}
	}
	h.q.drain()
	h.waitText("Telemetry off")
	if set, _ := app.LoadTelemetrySettings(h.st.Home()); set.Consent != app.ConsentOff {
		t.Fatalf("settings after the switch: %+v", set)
	}
}
