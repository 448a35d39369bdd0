//go:build cgo

package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "audit", Title: "Audit log", Icon: theme.IconNameList, Order: 95, Modes: []string{app.ModeTechnician}, View: auditScreen})
}

// auditShown is how many of the newest entries the screen lists; export has them all.
const auditShown = 300

// auditScreen is the audit log for support staff: the health summary of the last 30 days
// (success rate per hardware model and per bundle), whether the chain verifies, and the
// newest entries, with export to a file and verify. It reads the log again whenever an
// update ends.
func auditScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	demo := st.Demo() != nil
	verdict := boldLabel("")
	verdict.Wrapping = fyne.TextWrapWord
	health := container.NewVBox()
	list := container.NewVBox()
	// The log is read, verified and summed up off the UI goroutine (a long log takes a
	// while: about 250,000 entries a second); only the drawing comes back to it. A read
	// that a newer one overtook is dropped.
	var gen int
	show := func(entries []app.AuditEntry, rep *app.AuditReport, stats *app.AuditStats, err, statsErr error) {
		if err != nil {
			setText(verdict, "✘ "+app.Text(err.Error()))
			return
		}
		setText(verdict, auditVerdict(rep))
		if rep.OK() {
			verdict.Importance = widget.SuccessImportance
		} else {
			verdict.Importance = widget.DangerImportance
		}
		verdict.Refresh()
		health.Objects = healthRows(stats, statsErr)
		health.Refresh()
		var objs []fyne.CanvasObject
		if len(entries) == 0 {
			objs = append(objs, wrapLabel("Nothing was verified or flashed on this computer yet."))
		}
		for i := len(entries) - 1; i >= 0 && len(entries)-i <= auditShown; i-- {
			objs = append(objs, auditRow(&entries[i]), widget.NewSeparator())
		}
		if len(entries) > auditShown {
			objs = append(objs, wrapLabel(fmt.Sprintf("… and %d older entries: export the log to see them all.", len(entries)-auditShown)))
		}
		list.Objects = objs
		list.Refresh()
	}
	draw := func() {
		gen++
		mine := gen
		setText(verdict, "Reading the audit log…")
		go func() {
			entries, rep, err := app.ListAudit(app.AuditQuery{Demo: demo})
			var stats *app.AuditStats
			var statsErr error
			if err == nil {
				stats, statsErr = app.AuditHealth(30, demo)
			}
			st.do(func() {
				if mine == gen {
					show(entries, rep, stats, err, statsErr)
				}
			})
		}()
	}
	st.Jobs.AddListener(bindingListener(func() {
		if b := st.batch(); b == nil || !b.Running() {
			draw()
		}
	}))
	draw()
	verify := newButton("Verify the chain", theme.ConfirmIcon(), func() {
		go func() {
			rep, _, err := app.VerifyAudit("", demo, nil)
			st.do(func() {
				if err != nil {
					dialog.ShowError(err, sh.Window)
					return
				}
				draw()
				dialog.ShowInformation("Audit log", auditVerdict(rep), sh.Window)
			})
		}()
	})
	export := newButton("Export for support…", theme.DocumentSaveIcon(), func() {
		d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
			if err != nil || w == nil {
				return
			}
			path := w.URI().Path()
			w.Close()
			go func() {
				rep, err := app.ExportAudit(path, demo)
				st.do(func() {
					if err != nil {
						dialog.ShowError(err, sh.Window)
						return
					}
					dialog.ShowInformation("Audit log exported", fmt.Sprintf("%d entries written to %s.\n\nHead %s: note it with the file; `fieldflash audit verify FILE --anchor %s` proves on any computer that nothing was changed or cut.",
						rep.Entries, app.Text(path), rep.Head, rep.Head), sh.Window)
				})
			}()
		}, sh.Window)
		d.SetFileName("fieldflash-audit.jsonl")
		d.Show()
	})
	refresh := newButton("Read again", theme.ViewRefreshIcon(), draw)
	top := container.NewVBox(container.NewHBox(verify, export, refresh), verdict,
		widget.NewCard("Health, last 30 days", "updates that reached the device; refused and canceled apart", health))
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, container.NewVScroll(container.NewPadded(list)))
}

func auditVerdict(rep *app.AuditReport) string {
	if p := rep.Problem; p != nil {
		return fmt.Sprintf("✘ The audit log does not verify: %s. Entries up to %d are intact; export the file for support.", app.Text(p.Error()), p.After)
	}
	s := fmt.Sprintf("✔ %d entries; the chain is intact", rep.Entries)
	if rep.Anchored > 0 {
		s += fmt.Sprintf(" and holds the %d heads noted before", rep.Anchored)
	}
	if n := len(rep.Torn); n > 0 {
		s += fmt.Sprintf(". %d records were torn by a crash or power cut (noted in the log)", n)
	}
	if rep.TornTail != nil {
		s += ". The last record was torn by a crash; it is noted at the next write"
	}
	return s + "."
}

func healthRows(st *app.AuditStats, err error) []fyne.CanvasObject {
	if err != nil {
		return []fyne.CanvasObject{wrapLabel(app.Text(err.Error()))}
	}
	if st.Total.Updates+st.Total.Refused+st.Total.Canceled == 0 {
		return []fyne.CanvasObject{wrapLabel("No updates in the last 30 days.")}
	}
	rows := []fyne.CanvasObject{wrapLabel("All: " + rateText(st.Total))}
	for _, r := range st.ByModel {
		rows = append(rows, wrapLabel(app.Text(r.Key)+": "+rateText(r)))
	}
	for _, r := range st.ByBundle {
		label := r.Label
		if label == "" {
			label = r.Key[:min(16, len(r.Key))]
		}
		rows = append(rows, wrapLabel("bundle "+app.Text(label)+": "+rateText(r)))
	}
	return rows
}

func rateText(r app.AuditRate) string {
	s := "no update reached a device"
	if r.Updates > 0 {
		s = fmt.Sprintf("%.0f %% succeeded (%d of %d)", r.Success*100, r.OK, r.Updates)
	}
	if r.Refused > 0 || r.Canceled > 0 {
		s += fmt.Sprintf("; %d refused, %d canceled", r.Refused, r.Canceled)
	}
	return s
}

func auditRow(e *app.AuditEntry) fyne.CanvasObject {
	head := fmt.Sprintf("#%d  %s  %s: %s", e.Seq, e.Time.Local().Format("2006-01-02 15:04"), e.Kind, e.Outcome)
	if e.ErrorClass != "" {
		head += " (" + e.ErrorClass + ")"
	}
	var parts []string
	if e.Hardware != "" {
		parts = append(parts, e.Hardware)
	}
	if e.From != "" || e.To != "" {
		parts = append(parts, fmt.Sprintf("%s -> %s", orUnknown(e.From), orUnknown(e.To)))
	}
	if e.Result != "" && e.Kind != "anomaly-warning" {
		parts = append(parts, e.Result)
	}
	if e.Bundle != "" {
		parts = append(parts, "bundle "+e.Bundle)
	}
	if e.Device != "" {
		parts = append(parts, "device "+e.Device[:min(8, len(e.Device))])
	}
	if e.Operator != "" {
		parts = append(parts, "by "+e.Operator)
	}
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	return container.NewVBox(boldLabel(app.Text(head)), wrapLabel(app.Text(strings.Join(parts, " · "))))
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
