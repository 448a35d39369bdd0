//go:build cgo

package ui

import (
	"errors"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "simple", Title: "Update", Icon: theme.IconNameHome, Order: 5, Modes: []string{app.ModeSimple}, View: simpleScreen})
}

// simpleDevice is the one device simple mode works on: the first the bundle fits, else
// the first that answered.
func (st *State) simpleDevice() *DeviceRow {
	var answered *DeviceRow
	for _, r := range st.Rows() {
		if r.Fit != nil && r.Fit.OK {
			return r
		}
		if answered == nil && r.Probe != nil && r.Probe.Identity != nil {
			answered = r
		}
	}
	return answered
}

// simpleScreen is for end users: one device, one bundle, one large button, plain words.
func simpleScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	title := bigText("Update your device", colorOf(theme.ColorNameForeground), 2.2)
	bundle := wrapLabel("")
	device := wrapLabel("")
	bar := widget.NewProgressBar()
	detail := widget.NewLabel("")
	outcome := wrapLabel("")
	outcome.TextStyle.Bold = true
	var job *Job
	var button *Button
	button = newPrimary("Update my device", theme.DownloadIcon(), func() {
		if job != nil && job.Running {
			job.Cancel()
			return
		}
		d := st.simpleDevice()
		if d == nil {
			return
		}
		b, err := st.Update([]string{d.Port.Path})
		if err != nil {
			st.Status.Set(err.Error())
			return
		}
		job = b.Jobs[0]
		bar.Show()
		job.Rev.AddListener(bindingListener(drawJob(job, bar, detail, outcome, button)))
	})
	open := newButton("Choose the update file…", theme.FolderOpenIcon(), sh.OpenBundleDialog)
	more := widget.NewButton("More options (technician mode)", func() { sh.Show("bundle") })
	more.Importance = widget.LowImportance
	draw := func() {
		b := st.bundle()
		switch {
		case b == nil:
			bundle.SetText("Choose the update file you were given (it ends in .fwb), or drop it onto this window.")
		case b.Verifying:
			bundle.SetText("Checking the update file…")
		case b.Verified == nil:
			why := b.Err.Error()
			var ve *app.VerifyError
			if errors.As(b.Err, &ve) {
				why = ve.Reason
			}
			bundle.SetText("This file is not a genuine update, so it will not be installed: " + safe(why) + ". Ask for a new copy.")
		default:
			bundle.SetText("✔ A genuine update from " + safe(b.Verified.Repository) + ".")
		}
		d := st.simpleDevice()
		switch {
		case d == nil:
			device.SetText("Plug in your device with its USB cable.")
		case d.Fit != nil && d.Fit.OK && d.Fit.Current:
			device.SetText("✔ Your device is up to date (" + d.Fit.Version + ").")
		case d.Fit != nil && d.Fit.OK && d.Fit.Running == "unknown":
			device.SetText("✔ Found your device. It will get version " + d.Fit.Version + ".")
		case d.Fit != nil && d.Fit.OK:
			device.SetText("✔ Found your device. It will go from " + d.Fit.Running + " to " + d.Fit.Version + ".")
		case d.Fit != nil:
			device.SetText("This update is not for your device: " + safe(d.Fit.Reason))
		default:
			device.SetText("Found a device; waiting for the update file.")
		}
		running := job != nil && job.Running
		if !running {
			ok := d != nil && d.Fit != nil && d.Fit.OK && !d.Fit.Current && st.Verified() != nil
			button.SetText("Update my device")
			if ok {
				button.Enable()
			} else {
				button.Disable()
			}
		}
	}
	st.Bundle.AddListener(bindingListener(draw))
	st.Devices.AddListener(bindingListener(draw))
	draw()
	button.Resize(fyne.NewSize(320, 72))
	big := container.NewGridWrap(fyne.NewSize(360, 64), button)
	bar.Hide() // until an update runs
	return container.NewVScroll(container.NewPadded(container.NewVBox(title, bundle, container.NewHBox(open), device,
		container.NewCenter(big), bar, detail, outcome, layout.NewSpacer(), more)))
}

func drawJob(j *Job, bar *widget.ProgressBar, detail, outcome *widget.Label, button *Button) func() {
	return func() {
		if j.Total > 0 {
			bar.SetValue(float64(j.Bytes) / float64(j.Total))
		}
		switch {
		case j.Running && j.Waiting:
			detail.SetText("The device was disconnected. Plug it back in: the update continues by itself.")
		case j.Running:
			detail.SetText("Updating… do not unplug the device. " + progressText(j.Bytes, j.Total, j.Rate, j.ETA))
		default:
			detail.SetText("")
		}
		if j.Running {
			button.SetText("Stop")
			button.Enable()
			outcome.SetText("")
			return
		}
		button.SetText("Update my device")
		if ex := j.Explain; ex != nil {
			if j.Result.Status == app.StatusOK {
				bar.SetValue(1)
				outcome.SetText("✔ Done. " + ex.Headline + ".")
			} else {
				outcome.SetText("The update did not finish. " + ex.Safety + " Press “Update my device” to try again.")
				button.Enable()
			}
		}
	}
}
