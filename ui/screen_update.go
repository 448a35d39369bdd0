//go:build cgo

package ui

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "update", Title: "Update", Icon: theme.IconNameDownload, Order: 30, Modes: []string{app.ModeTechnician}, View: updateScreen})
}

// targets are the ports an Update press takes: the picked ones, else every device the
// bundle fits that does not run it yet.
func (st *State) targets() []string {
	if p := st.Picked(); len(p) > 0 {
		return p
	}
	var out []string
	for _, r := range st.Rows() {
		if r.Fit != nil && r.Fit.OK && !r.Fit.Current {
			out = append(out, r.Port.Path)
		}
	}
	return out
}

// updateScreen has one primary button; below it one card per device with its steps,
// progress, throughput and result, and "Retry the failed ones" when some failed.
func updateScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	what := wrapLabel("")
	var update *Button
	update = newPrimary("Update", theme.MediaPlayIcon(), func() {
		if _, err := st.Update(st.targets()); err != nil {
			st.Status.Set(err.Error())
		}
	})
	cancel := newButton("Cancel", theme.CancelIcon(), func() {
		if b := st.batch(); b != nil {
			b.Cancel()
		}
	})
	sh.OnEscape("update", func() {
		if b := st.batch(); b != nil && b.Running() {
			b.Cancel()
		}
	})
	summary := boldLabel("")
	summary.Wrapping = fyne.TextWrapOff
	retry := newButton("Retry the failed ones", theme.ViewRefreshIcon(), func() {
		if b := st.batch(); b != nil {
			b.RetryFailed()
		}
	})
	// A device that does not say which board it is (stock Zephyr answers no os info, a
	// classic bootloader no banner id) is asked about: the person reads the label.
	ask := container.NewVBox()
	askKey := ""
	drawAsk := func(v *app.Verified) {
		key := fmt.Sprintf("%p", v)
		var rows []*DeviceRow
		if v != nil {
			for _, r := range st.Rows() {
				if r.NeedsHardware() {
					rows = append(rows, r)
					key += ";" + r.Port.Path + "=" + st.HardwareOf(r.Port.Path)
				}
			}
		}
		if key == askKey {
			return
		}
		askKey = key
		ask.Objects = nil
		for _, r := range rows {
			port := r.Port.Path
			ask.Add(wrapLabel(safe(fmt.Sprintf("The device on %s does not say which board it is. Read the hardware id off its label:", r.Where()))))
			pick := widget.NewSelect(app.BundleHardware(v, r.Probe.Protocol), nil)
			pick.Selected = st.HardwareOf(port)
			pick.OnChanged = func(s string) { st.SetHardware(port, s) }
			ask.Add(pick)
		}
		ask.Refresh()
	}
	cards := container.NewVBox()
	var shown *Batch
	views := map[*Job]*jobView{}
	draw := func() {
		b := st.batch()
		v := st.Verified()
		ports := st.targets()
		switch {
		case v == nil:
			setText(what, "Open a trusted bundle first (Bundle screen, Ctrl+O).")
		case len(ports) == 0 && st.current() > 0:
			setText(what, safe(fmt.Sprintf("Bundle %s %s is open. Every device it fits runs it already (%d).", v.Repository, versions(v), st.current())))
		case len(ports) == 0:
			setText(what, safe(fmt.Sprintf("Bundle %s %s is open. No device to update: connect one the bundle fits, or pick one on the Devices screen.", v.Repository, versions(v))))
		default:
			setText(what, safe(fmt.Sprintf("Bundle %s %s for %d device(s): %s", v.Repository, versions(v), len(ports), names(st, ports))))
		}
		drawAsk(v)
		running := b != nil && b.Running()
		if v == nil || len(ports) == 0 || running {
			update.Disable()
		} else {
			update.Enable()
		}
		if len(ports) > 1 {
			setButton(update, fmt.Sprintf("Update %d devices", len(ports)))
		} else {
			setButton(update, "Update")
		}
		if running {
			cancel.Enable()
		} else {
			cancel.Disable()
		}
		if b != shown {
			shown = b
			cards.Objects = nil
			views = map[*Job]*jobView{}
			if b != nil {
				for _, j := range b.Jobs {
					jv := newJobView(sh, j)
					views[j] = jv
					cards.Add(jv.root)
				}
			}
			cards.Refresh()
		}
		sum, showRetry := "", false
		if b != nil && !running {
			failed := len(b.Failed())
			sum, showRetry = fmt.Sprintf("%d passed, %d failed", b.Passed(), failed), failed > 0
		}
		setText(summary, sum)
		if showRetry {
			retry.Show()
		} else {
			retry.Hide()
		}
	}
	st.Jobs.AddListener(bindingListener(draw))
	st.BatchRev.AddListener(bindingListener(draw))
	st.Devices.AddListener(bindingListener(draw))
	st.Selected.AddListener(bindingListener(draw))
	st.Bundle.AddListener(bindingListener(draw))
	draw()
	top := container.NewVBox(what, ask, container.NewHBox(update, cancel))
	bottom := container.NewHBox(summary, retry)
	return container.NewBorder(container.NewPadded(top), container.NewPadded(bottom), nil, nil, container.NewVScroll(container.NewPadded(cards)))
}

// current counts the devices that run the open bundle's firmware already.
func (st *State) current() int {
	n := 0
	for _, r := range st.Rows() {
		if r.Fit != nil && r.Fit.OK && r.Fit.Current {
			n++
		}
	}
	return n
}

func versions(v *app.Verified) string {
	seen := map[string]bool{}
	out := ""
	for _, t := range v.Targets {
		if !seen[t.Meta.Version] {
			seen[t.Meta.Version] = true
			if out != "" {
				out += ", "
			}
			out += t.Meta.Version
		}
	}
	return out
}

func names(st *State, ports []string) string {
	out := ""
	for i, p := range ports {
		if i > 0 {
			out += ", "
		}
		if r := st.Row(p); r != nil {
			out += r.Name()
		} else {
			out += p
		}
	}
	return out
}

// jobView is one device's card.
type jobView struct {
	j       *Job
	root    fyne.CanvasObject
	title   *widget.Label
	steps   []*widget.Label
	bar     *widget.ProgressBar
	detail  *widget.Label
	graph   *Graph
	line    *widget.Label
	warning *widget.Label
	waiting *widget.Label
	result  *widget.Label
	safety  *widget.Label
	next    *widget.Label
	cancel  *Button
	retry   *Button
	recover *Button
	pull    *Button
}

func newJobView(sh *Shell, j *Job) *jobView {
	jv := &jobView{j: j, title: boldLabel(""), bar: widget.NewProgressBar(), detail: widget.NewLabel(""), graph: newGraph(),
		line: wrapLabel(""), warning: boldLabel(""), waiting: boldLabel(""), result: boldLabel(""), safety: wrapLabel(""), next: wrapLabel("")}
	jv.result.Wrapping = fyne.TextWrapWord
	jv.waiting.Wrapping = fyne.TextWrapWord
	jv.warning.Wrapping = fyne.TextWrapWord
	jv.warning.Importance = widget.WarningImportance
	var stepObjs []fyne.CanvasObject
	for _, s := range stepList {
		l := widget.NewLabel("· " + s.Title)
		jv.steps = append(jv.steps, l)
		stepObjs = append(stepObjs, l)
	}
	jv.cancel = newButton("Cancel", theme.CancelIcon(), j.Cancel)
	jv.retry = newButton("Retry", theme.ViewRefreshIcon(), j.Retry)
	jv.recover = newButton("Open the recovery wizard", theme.HelpIcon(), func() { sh.OpenRecovery(j.Port) })
	buttons := container.NewHBox(jv.cancel, jv.retry, jv.recover)
	if d := sh.State.Demo(); d != nil && d.Device(j.Port) != nil {
		jv.pull = newButton("Pull the cable (demo)", theme.MediaStopIcon(), func() {
			d.PullCable(j.Port, 2*time.Second)
			sh.State.Status.Set("The virtual cable of " + j.Name + " is out for 2 s: watch the update wait for it and resume.")
		})
		buttons.Add(jv.pull)
	}
	progress := container.NewBorder(nil, nil, nil, jv.graph, container.NewVBox(jv.bar, jv.detail))
	body := container.NewVBox(jv.title, jv.warning, container.NewGridWithColumns(3, stepObjs...), progress, jv.waiting, jv.line,
		jv.result, jv.safety, jv.next, buttons)
	jv.root = widget.NewCard("", "", body)
	j.Rev.AddListener(bindingListener(jv.refresh))
	jv.refresh()
	return jv
}

func (jv *jobView) refresh() {
	j := jv.j
	setText(jv.title, safe(fmt.Sprintf("%s on %s", j.Name, j.Where)))
	cur := -1
	for i, s := range stepList {
		if s.Step == j.Step {
			cur = i
		}
	}
	for i, s := range stepList {
		l := jv.steps[i]
		mark := "·"
		bold := false
		switch {
		case j.Done[s.Step]:
			mark = "✔"
		case i == cur && j.Running:
			mark, bold = "▶", true
		case i == cur && j.Result != nil && j.Result.Status != app.StatusOK:
			mark, bold = "✘", true
		}
		if text := mark + " " + s.Title; l.Text != text || l.TextStyle.Bold != bold {
			l.TextStyle.Bold = bold
			l.SetText(text)
		}
	}
	if j.Total > 0 {
		jv.bar.SetValue(float64(j.Bytes) / float64(j.Total))
	} else {
		jv.bar.SetValue(0)
	}
	if j.Result != nil && j.Result.Status == app.StatusOK {
		jv.bar.SetValue(1)
	}
	setText(jv.detail, progressText(j.Bytes, j.Total, j.Rate, j.ETA))
	jv.graph.Set(j.Rates)
	if j.Waiting {
		jv.waiting.SetText("Waiting for the device… plug the cable back in: the update continues by itself.")
		jv.waiting.Show()
	} else {
		jv.waiting.Hide()
	}
	setText(jv.line, safe(j.Line))
	show := func(w fyne.CanvasObject, on bool) {
		if on {
			w.Show()
		} else {
			w.Hide()
		}
	}
	setText(jv.warning, "⚠ "+j.Warning)
	show(jv.warning, j.Warning != "")
	ex := j.Explain
	show(jv.result, ex != nil)
	show(jv.safety, ex != nil)
	show(jv.next, ex != nil && ex.Next != "" && j.Result.Status != app.StatusOK)
	if ex != nil {
		mark := "✔ "
		if j.Result.Status != app.StatusOK {
			mark = "✘ "
		}
		jv.result.SetText(mark + safe(ex.Headline))
		if ex.Safe {
			jv.safety.SetText("Device safe: " + safe(ex.Safety))
		} else {
			jv.safety.SetText("Device not safe yet: " + safe(ex.Safety))
		}
		jv.next.SetText("Next: " + safe(ex.Next))
	}
	show(jv.cancel, j.Running)
	failed := !j.Running && j.Result != nil && j.Result.Status != app.StatusOK
	show(jv.retry, failed && ex != nil && (ex.Resumable || j.Result.Status == app.StatusRefused))
	if failed && ex != nil && ex.Resumable && j.Bytes > 0 {
		jv.retry.SetText("Resume")
	} else {
		jv.retry.SetText("Retry")
	}
	show(jv.recover, failed && ex != nil && ex.Recovery)
	if jv.pull != nil {
		show(jv.pull, j.Running && j.Step == app.StepTransfer && !j.Waiting)
	}
}
