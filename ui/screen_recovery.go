//go:build cgo

package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "recovery", Title: "Recovery", Icon: theme.IconNameHelp, Order: 40, Modes: []string{app.ModeTechnician}, View: recoveryScreen})
}

// anyPort in the wizard's port choice watches every port: the device may only appear
// once it is plugged in.
const anyPort = "Any port: the first device that answers"

// recovery is the wizard's state: one instruction per page.
type recovery struct {
	sh       *Shell
	page     int
	port     string
	rec      *app.Recovery
	hardware string
	batch    *Batch
	stop     context.CancelFunc

	body *fyne.Container
}

// OpenRecovery shows the recovery wizard for the device on port ("" for any).
func (sh *Shell) OpenRecovery(port string) {
	sh.Show("recovery")
	if r := sh.wizard; r != nil {
		r.port = port
		r.goTo(1)
	}
}

// recoveryScreen brings back a device that does not boot: pick the port, follow one
// instruction (the wizard notices by itself when the device answers), pick the
// firmware, flash, done.
func recoveryScreen(sh *Shell) fyne.CanvasObject {
	r := &recovery{sh: sh, body: container.NewVBox()}
	sh.wizard = r
	sh.OnEscape("recovery", func() {
		if r.page > 0 && (r.batch == nil || !r.batch.Running()) {
			r.goTo(r.page - 1)
		}
	})
	r.goTo(0)
	return container.NewVScroll(container.NewPadded(r.body))
}

func (r *recovery) goTo(page int) {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	r.page = page
	st := r.sh.State
	var objs []fyne.CanvasObject
	head := func(n int, title string) {
		objs = append(objs, widget.NewLabel(fmt.Sprintf("Step %d of 4", n)), bigText(title, colorOf(theme.ColorNameForeground), 1.6))
	}
	switch page {
	case 0:
		head(1, "Which port is the device on?")
		opts := []string{anyPort}
		keys := map[string]string{anyPort: ""}
		for _, row := range st.Rows() {
			label := row.Port.Path
			if row.USB != nil {
				label = safe(row.USB.Name() + " on " + row.Where())
			}
			opts = append(opts, label)
			keys[label] = row.Key()
		}
		sel := widget.NewSelect(opts, func(s string) { r.port = keys[s] })
		sel.SetSelected(anyPort)
		for label, k := range keys {
			if k != "" && k == r.port {
				sel.SetSelected(label)
			}
		}
		objs = append(objs, wrapLabel("If you do not know, leave “any port”: the wizard watches them all."), sel,
			newPrimary("Next", theme.NavigateNextIcon(), func() { r.goTo(1) }))
	case 1:
		head(2, "Hold BOOT, plug in the cable, then press Next")
		where := "any port"
		if r.port != "" {
			where = r.port
		}
		objs = append(objs,
			wrapLabel("On an MCUboot board: hold the BOOT (recovery) button, plug in the USB data cable (or press RESET), then let go of the button. On a classic bootloader: hold its UPDATE key while you power it on. On an STM32: hold BOOT0 high (its jumper or button) while you plug it in or press RESET: its built-in USB DFU bootloader comes up."),
			wrapLabel("The wizard notices by itself when the device answers on "+where+"."),
			widget.NewProgressBarInfinite(),
			container.NewHBox(newButton("Back", theme.NavigateBackIcon(), func() { r.goTo(0) }),
				newPrimary("Next", theme.NavigateNextIcon(), func() { r.goTo(1) })))
		r.watch()
	case 2:
		head(3, "The device answers")
		objs = append(objs, wrapLabel(safe(r.rec.Device())), wrapLabel(safe(r.rec.Text)))
		if d := r.rec.DFU; d != nil && d.Status != "" {
			objs = append(objs, wrapLabel(safe(fmt.Sprintf("The device reports %s: %s. Putting the firmware on it clears the error first (CLRSTATUS).", d.Status, d.StatusMeaning))))
		}
		v := st.Verified()
		if v == nil {
			objs = append(objs, wrapLabel("Open the bundle with the firmware for it (Bundle screen), then press Next."),
				newButton("Open a bundle…", theme.FolderOpenIcon(), r.sh.OpenBundleDialog))
		}
		if hw, ids := app.RecoveryHardware(v, r.rec); v != nil && hw == "" {
			what := "This bootloader does not say which board it is."
			if r.rec.USB != nil {
				what = "No firmware in the bundle names this device's USB ids (in DFU mode a board often has other ids than its application)."
			}
			objs = append(objs, wrapLabel(what+" Read the hardware id from the board's label:"))
			pick := widget.NewSelect(ids, func(s string) { r.hardware = s })
			if r.hardware == "" && len(ids) == 1 {
				r.hardware = ids[0]
			}
			pick.SetSelected(r.hardware)
			objs = append(objs, pick)
		}
		objs = append(objs, container.NewHBox(newButton("Back", theme.NavigateBackIcon(), func() { r.goTo(1) }),
			newPrimary("Put the firmware on it", theme.DownloadIcon(), func() {
				v := st.Verified()
				if v == nil {
					st.Status.Set("Open a trusted bundle first.")
					return
				}
				if hw, _ := app.RecoveryHardware(v, r.rec); hw == "" && r.hardware == "" {
					st.Status.Set("Pick the hardware id from the board's label first.")
					return
				}
				r.batch = st.recoveryBatch(v, r.rec, r.hardware)
				r.goTo(3)
				r.batch.start()
			})))
	case 3:
		head(4, "Putting the firmware on the device")
		j := r.batch.Jobs[0]
		objs = append(objs, newJobView(r.sh, j).root)
		j.Rev.AddListener(bindingListener(func() {
			if r.page == 3 && r.batch != nil && r.batch.Jobs[0] == j && !j.Running && j.Result != nil && j.Result.Status == app.StatusOK {
				r.goTo(4)
			}
		}))
	case 4:
		j := r.batch.Jobs[0]
		objs = append(objs, bigText("The device is back", colorOf(theme.ColorNameSuccess), 1.8),
			wrapLabel(safe(j.Explain.Headline+". "+j.Explain.Safety)),
			newPrimary("Done", theme.ConfirmIcon(), func() { r.rec, r.batch, r.hardware = nil, nil, ""; r.goTo(0) }))
	}
	r.body.Objects = objs
	r.body.Refresh()
}

// watch asks the port (or every port) once a second until something answers, then
// moves on by itself.
func (r *recovery) watch() {
	st := r.sh.State
	ctx, cancel := context.WithCancel(st.ctx)
	r.stop = cancel
	port := r.port
	baud := st.Settings.Baud
	st.goWork(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			// What to ask, read on the UI goroutine: each serial port, and each USB DFU
			// device by what picks it again (its spec).
			type target struct{ key, usb string }
			done := make(chan []target, 1)
			st.do(func() {
				var ts []target
				for _, row := range st.Rows() {
					if port != "" && row.Key() != port {
						continue
					}
					t := target{key: row.Key()}
					if row.USB != nil {
						t.usb = row.USB.Spec()
					}
					ts = append(ts, t)
				}
				if len(ts) == 0 && port != "" && !strings.HasPrefix(port, "usb") {
					ts = append(ts, target{key: port}) // a serial port not listed (yet)
				}
				done <- ts
			})
			var targets []target
			select {
			case targets = <-done:
			case <-ctx.Done():
				return
			}
			for _, tg := range targets {
				p := tg.key
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				var rec *app.Recovery
				var err error
				if tg.usb != "" {
					rec, err = app.ProbeRecoveryUSB(pctx, tg.usb, nil)
				} else {
					rec, err = app.ProbeRecovery(pctx, p, baud, "")
				}
				pcancel()
				if ctx.Err() != nil {
					return
				}
				if err == nil && rec.Answered() {
					st.do(func() {
						if ctx.Err() == nil && r.page == 1 {
							r.rec, r.port = rec, p
							r.goTo(2)
						}
					})
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}
