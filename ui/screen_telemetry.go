//go:build cgo

package ui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "telemetry", Title: "Telemetry", Icon: theme.IconNameUpload, Order: 97, Modes: []string{app.ModeTechnician}, View: telemetryScreen})
	RegisterBanner(telemetryQuestionBanner)
	OnStart(func(sh *Shell) {
		if sh.State.Demo() == nil {
			answerFromEnvironment(sh.State.Home())
			uploads.restart(sh.State)
		}
	})
}

// uploads is the window's uploader: it runs while telemetry is on, probing the endpoint
// and sending the queue when the connection is back (app/telemetry's Run).
var uploads uploaderCtl

type uploaderCtl struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (u *uploaderCtl) restart(st *State) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cancel != nil {
		u.cancel()
		u.cancel = nil
	}
	up, err := app.NewTelemetryUploader(st.Home())
	if err != nil {
		return // off, or no endpoint: nothing to run
	}
	ctx, cancel := context.WithCancel(st.ctx)
	u.cancel = cancel
	go up.Run(ctx)
}

// answerFromEnvironment keeps FIELDFLASH_TELEMETRY as the answer, as the CLI does.
func answerFromEnvironment(home string) {
	switch strings.ToLower(os.Getenv("FIELDFLASH_TELEMETRY")) {
	case "on", "yes", "1", "true":
		app.SetTelemetryConsent(home, true, "environment")
	case "off", "no", "0", "false":
		app.SetTelemetryConsent(home, false, "environment")
	}
}

// questionRow is the question's row while it is shown: an answer on the telemetry screen
// hides it too.
var questionRow *fyne.Container

// telemetryQuestionBanner asks the first-run question, without blocking the window:
// until answered nothing is queued or sent. The demo has nothing to report and does
// not ask.
func telemetryQuestionBanner(sh *Shell) fyne.CanvasObject {
	if sh.State.Demo() != nil {
		return nil
	}
	home := sh.State.Home()
	answerFromEnvironment(home)
	set, err := app.LoadTelemetrySettings(home)
	if err != nil || set.Consent != app.ConsentUnasked {
		return nil
	}
	box := container.NewVBox()
	questionRow = box
	answer := func(on bool) {
		if _, err := app.SetTelemetryConsent(home, on, "question"); err != nil {
			dialog.ShowError(err, sh.Window)
			return
		}
		box.Hide()
		uploads.restart(sh.State)
		if on {
			sh.State.Status.Set("Telemetry on: anonymous reports go to your vendor when online. Settings -> Telemetry turns it off.")
		} else {
			sh.State.Status.Set("Telemetry stays off. Telemetry in the list on the left if you change your mind.")
		}
	}
	what := newButton("What is sent?", theme.InfoIcon(), func() {
		l := widget.NewLabel(app.TelemetryQuestion())
		dialog.ShowCustom("What telemetry sends", "Close", container.NewVScroll(l), sh.Window)
	})
	yes := newButton("Send reports", theme.ConfirmIcon(), func() { answer(true) })
	no := newButton("Do not send", theme.CancelIcon(), func() { answer(false) })
	box.Add(container.NewBorder(nil, nil, nil, container.NewHBox(what, yes, no),
		wrapLabel("May fieldflash send anonymous usage reports (outcomes, versions, hardware model; never names, paths or serial numbers) to find firmware that fails in the field?")))
	return box
}

// telemetryScreen: the switch, what waits and what was sent ("12 events waiting, last
// sent 3 h ago"), send now, the endpoint, and the queue exactly as it would be sent.
func telemetryScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	home := st.Home()
	status := boldLabel("")
	status.Wrapping = fyne.TextWrapWord
	problem := wrapLabel("")
	queue := container.NewVBox()
	var on *widget.Check
	endpoint := widget.NewEntry()
	endpoint.SetPlaceHolder("https://collector.example.com:4318")
	draw := func() {
		ts, err := app.GetTelemetryStatus(home)
		if err != nil {
			setText(status, app.Text(err.Error()))
			return
		}
		on.SetChecked(ts.Settings.Consent == app.ConsentOn)
		setText(status, TelemetryLine(ts, time.Now()))
		setText(problem, app.Text(ts.Problem))
		if endpoint.Text == "" {
			endpoint.SetText(ts.Settings.Endpoint)
		}
		list, _ := app.TelemetryQueue(home, 50)
		var objs []fyne.CanvasObject
		for _, q := range list {
			objs = append(objs, wrapLabel(app.Text(queuedText(q.Event))))
		}
		if len(objs) == 0 {
			objs = append(objs, wrapLabel("Nothing waits to be sent."))
		}
		queue.Objects = objs
		queue.Refresh()
	}
	on = widget.NewCheck("Send anonymous usage reports", func(b bool) {
		ts, _ := app.LoadTelemetrySettings(home)
		if b == (ts.Consent == app.ConsentOn) {
			return
		}
		n, err := app.SetTelemetryConsent(home, b, "settings")
		if err != nil {
			dialog.ShowError(err, sh.Window)
		}
		if !b && n > 0 {
			st.Status.Set(fmt.Sprintf("Telemetry off: %d waiting reports deleted; nothing is sent.", n))
		}
		if questionRow != nil {
			questionRow.Hide()
		}
		uploads.restart(st)
		draw()
	})
	saveEndpoint := newButton("Save endpoint", theme.DocumentSaveIcon(), func() {
		ep := strings.TrimSpace(endpoint.Text)
		if _, err := app.ConfigureTelemetry(home, app.TelemetryConfig{Endpoint: &ep}); err != nil {
			dialog.ShowError(err, sh.Window)
			return
		}
		uploads.restart(st)
		draw()
	})
	send := newButton("Send now", theme.UploadIcon(), func() {
		st.Status.Set("Sending telemetry…")
		st.goWork(func() {
			rep, err := app.SendTelemetry(st.ctx, home, 30*time.Second)
			st.do(func() {
				if err != nil {
					st.Status.Set(app.Text(err.Error()))
				} else {
					st.Status.Set(fmt.Sprintf("Sent %d reports.", rep.Sent))
				}
				draw()
			})
		})
	})
	what := newButton("What is sent?", theme.InfoIcon(), func() {
		dialog.ShowCustom("What telemetry sends", "Close", container.NewVScroll(widget.NewLabel(app.TelemetryQuestion())), sh.Window)
	})
	refresh := newButton("Read again", theme.ViewRefreshIcon(), draw)
	draw()
	top := container.NewVBox(container.NewHBox(on, what), status, problem,
		container.NewBorder(nil, nil, widget.NewLabel("Endpoint"), saveEndpoint, endpoint),
		container.NewHBox(send, refresh), widget.NewLabel("Waiting to be sent, oldest first:"))
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, container.NewVScroll(container.NewPadded(queue)))
}

// TelemetryLine is the status in one line: "Telemetry on · 12 events waiting, last sent 3 h ago".
func TelemetryLine(ts *app.TelemetryStatus, now time.Time) string {
	state := "Telemetry off: nothing is queued or sent"
	switch ts.Settings.Consent {
	case app.ConsentOn:
		state = "Telemetry on"
	case app.ConsentUnasked:
		state = "Telemetry off (not asked yet): nothing is queued or sent"
	}
	if ts.Settings.Consent != app.ConsentOn {
		return state
	}
	n := ts.Queue.Waiting
	s := fmt.Sprintf("%s · %d events waiting", state, n)
	if n == 1 {
		s = state + " · 1 event waiting"
	}
	if last := ts.Queue.Sent.LastSent; !last.IsZero() {
		s += ", last sent " + agoText(now.Sub(last))
	} else {
		s += ", nothing sent yet"
	}
	if d := ts.Queue.Dropped.Total(); d > 0 {
		s += fmt.Sprintf(" · %d dropped (queue full or too old), reported with the next upload", d)
	}
	return s
}

func agoText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func queuedText(ev app.TelemetryEvent) string {
	s := fmt.Sprintf("%s  %s %s", ev.Hour.Local().Format("2006-01-02 15:00"), ev.Type, ev.Outcome)
	if ev.ErrorClass != "" {
		s += " (" + ev.ErrorClass + ")"
	}
	if ev.Hardware != "" {
		s += " · " + ev.Hardware
	}
	if ev.From != "" || ev.To != "" {
		s += fmt.Sprintf(" · %s -> %s", ev.From, ev.To)
	}
	return s
}
