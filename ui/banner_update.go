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

// The self-update banner: when a newer build of fieldflash for this platform is among
// the vendor's signed targets (docs/self-update.md), a row across the top of the window
// says so, shows what is new, and installs it when the technician asks and no update of a
// device is running. Nothing is installed without that request, and the check stays
// silent when the laptop is offline or no repository has a mirror configured.

// updateBanner is the row; it is empty until a newer build is found.
type updateBanner struct {
	sh    *Shell
	row   *fyne.Container
	offer *app.UpdateOffer
}

// newUpdateBanner returns the banner's row and starts the check off the UI goroutine.
func newUpdateBanner(sh *Shell) fyne.CanvasObject {
	b := &updateBanner{sh: sh, row: container.NewHBox()}
	st := sh.State
	if st.Demo() != nil {
		return b.row // the demo's session trusts the demo root only: no vendor to ask
	}
	go b.check()
	return b.row
}

func (b *updateBanner) check() {
	st := b.sh.State
	remotes, err := st.Session.Remotes()
	if err != nil || len(remotes) == 0 {
		return
	}
	repo := ""
	if len(remotes) > 1 {
		repo = remotes[0].Repository
	}
	offer, err := st.Session.CheckSelfUpdate(st.ctx, app.RunningBuild(), repo, nil)
	if err != nil || !offer.Newer {
		return
	}
	st.do(func() { b.show(offer) })
}

// show puts the offer in the row.
func (b *updateBanner) show(offer *app.UpdateOffer) {
	b.offer = offer
	msg := widget.NewLabel(fmt.Sprintf("fieldflash %s is available (this is %s).", app.Text(offer.Version()), app.Text(offer.Current.Version)))
	install := newButton("Update fieldflash…", theme.DownloadIcon(), b.confirm)
	install.Importance = widget.HighImportance
	later := newButton("Later", nil, func() { b.row.Objects = nil; b.row.Refresh() })
	later.Importance = widget.LowImportance
	b.row.Objects = []fyne.CanvasObject{widget.NewIcon(theme.InfoIcon()), msg, install, later}
	b.row.Refresh()
}

// confirm shows version, release notes and advisories, and asks.
func (b *updateBanner) confirm() {
	o := b.offer
	t := o.Target
	var lines []string
	lines = append(lines, fmt.Sprintf("fieldflash %s (release counter %d, %s), verified against the vendor's pinned root.",
		app.Text(t.Meta.Version), t.Meta.ReleaseCounter, app.Bytes(t.Length)))
	if notes := strings.TrimSpace(t.Meta.ReleaseNotes); notes != "" {
		var esc []string
		for _, l := range strings.Split(notes, "\n") {
			esc = append(esc, app.Text(l))
		}
		lines = append(lines, "", "What is new:", strings.Join(esc, "\n"))
	}
	if len(t.Meta.Advisories) > 0 {
		lines = append(lines, "", "Fixes advisories: "+app.Text(strings.Join(t.Meta.Advisories, ", ")))
	}
	lines = append(lines, "", fmt.Sprintf("The running %s is kept; `fieldflash self-update --rollback` puts it back.", app.Text(o.Current.Version)))
	body := widget.NewLabel(strings.Join(lines, "\n"))
	body.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("Install fieldflash "+app.Text(t.Meta.Version)+"?", "Install now", "Not now",
		container.NewVScroll(body), func(yes bool) {
			if yes {
				b.install()
			}
		}, b.sh.Window)
	d.Resize(fyne.NewSize(560, 380))
	d.Show()
}

// install applies the update, never while this window updates a device (the app layer
// refuses too while any flash journal is unfinished).
func (b *updateBanner) install() {
	st := b.sh.State
	if batch, _ := st.Jobs.Get(); batch != nil {
		if bt, ok := batch.(*Batch); ok && bt != nil && bt.Running() {
			b.say("An update of devices is running: install fieldflash when it has finished.")
			return
		}
	}
	offer := b.offer
	b.say("Installing fieldflash " + app.Text(offer.Version()) + "…")
	go func() {
		done, err := st.Session.ApplySelfUpdate(offer, app.RunningBuild())
		st.do(func() {
			if err != nil {
				b.say("fieldflash was not updated: " + app.Text(err.Error()))
				return
			}
			b.say(fmt.Sprintf("fieldflash %s is installed: restart fieldflash to use it. The previous build is kept at %s.", app.Text(done.To.Version), app.Text(done.Previous)))
		})
	}()
}

func (b *updateBanner) say(text string) {
	msg := widget.NewLabel(text)
	b.row.Objects = []fyne.CanvasObject{widget.NewIcon(theme.InfoIcon()), msg}
	b.row.Refresh()
}
