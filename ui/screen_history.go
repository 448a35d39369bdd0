//go:build cgo

package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "history", Title: "History", Icon: theme.IconNameHistory, Order: 60, Modes: []string{app.ModeTechnician}, View: historyScreen})
}

// historyScreen lists past updates from the journals, newest first; it reads them again
// whenever an update ends.
func historyScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	list := container.NewVBox()
	draw := func() {
		entries, err := st.Session.History()
		var objs []fyne.CanvasObject
		if err != nil {
			objs = append(objs, wrapLabel(err.Error()))
		}
		if len(entries) == 0 {
			objs = append(objs, wrapLabel("No updates yet on this computer."))
		}
		for _, e := range entries {
			objs = append(objs, historyRow(e), widget.NewSeparator())
		}
		list.Objects = objs
		list.Refresh()
	}
	st.Jobs.AddListener(bindingListener(func() {
		if b := st.batch(); b == nil || !b.Running() {
			draw()
		}
	}))
	draw()
	refresh := newButton("Read again", theme.ViewRefreshIcon(), draw)
	return container.NewBorder(container.NewPadded(container.NewVBox(container.NewHBox(refresh),
		wrapLabel("From the update journals in "+st.Session.JournalDir()))), nil, nil, nil, container.NewVScroll(container.NewPadded(list)))
}

func historyRow(e app.JournalEntry) fyne.CanvasObject {
	when := e.Updated.Local().Format("2006-01-02 15:04")
	head := fmt.Sprintf("%s  %s", when, e.Key.Device)
	var what string
	switch o := e.Outcome; {
	case e.Finished && o != nil:
		what = fmt.Sprintf("%s %s: %s, %s sent in %s", o.Target, o.Version, o.Result, app.Bytes(o.Bytes), app.Duration(o.Duration))
		if o.Retries > 0 {
			what += fmt.Sprintf(", %d retries", o.Retries)
		}
	default:
		what = fmt.Sprintf("%s: stopped at %s with %s acknowledged; the same update resumes there", e.Target, e.Step, app.Bytes(e.Acked))
	}
	return container.NewVBox(boldLabel(safe(head)), wrapLabel(safe(what)), wrapLabel(safe(fmt.Sprintf("bundle %s · %s · %d run(s)", e.Bundle, e.Protocol, e.Runs))))
}
