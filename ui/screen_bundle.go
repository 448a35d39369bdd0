//go:build cgo

package ui

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	Register(Screen{ID: "bundle", Title: "Bundle", Icon: theme.IconNameDocument, Order: 10, Modes: []string{app.ModeTechnician}, View: bundleScreen})
}

// OpenBundleDialog asks for a .fwb file and opens it.
func (sh *Shell) OpenBundleDialog() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		path := r.URI().Path()
		r.Close()
		sh.State.OpenBundle(path)
	}, sh.Window)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".fwb"}))
	d.Resize(fyne.NewSize(800, 520))
	d.Show()
}

// bundleScreen is the verification card: Trusted or Not trusted in large words, then
// who signed it and what it carries; a refusal in plain words with the next step.
func bundleScreen(sh *Shell) fyne.CanvasObject {
	st := sh.State
	open := newPrimary("Open a bundle…", theme.FolderOpenIcon(), sh.OpenBundleDialog)
	hint := widget.NewLabel("or drop a .fwb file onto the window (Ctrl+O)")
	card := container.NewVBox()
	draw := func() {
		card.Objects = bundleCard(st.bundle())
		card.Refresh()
	}
	st.Bundle.AddListener(bindingListener(draw))
	draw()
	return container.NewVScroll(container.NewPadded(container.NewVBox(container.NewHBox(open, hint), widget.NewSeparator(), card)))
}

func bundleCard(b *BundleState) []fyne.CanvasObject {
	switch {
	case b == nil:
		return []fyne.CanvasObject{bigText("No bundle open", colorOf(theme.ColorNameDisabled), 2),
			wrapLabel("Open the firmware bundle (.fwb) your vendor sent. It is checked here, offline, against the roots pinned on this computer before anything can be flashed.")}
	case b.Verifying:
		return []fyne.CanvasObject{bigText("Checking…", colorOf(theme.ColorNameForeground), 2), widget.NewLabel(safe(b.Path)), widget.NewProgressBarInfinite()}
	case b.Verified == nil:
		return refusalCard(b)
	}
	v := b.Verified
	out := []fyne.CanvasObject{
		bigText("Trusted", colorOf(theme.ColorNameSuccess), 2.6),
		widget.NewLabel(safe(b.Path)),
	}
	facts := widget.NewForm(
		widget.NewFormItem("Vendor", widget.NewLabel(safe(v.Repository))),
		widget.NewFormItem("Root version", widget.NewLabel(fmt.Sprintf("v%d", v.RootVersion))),
		widget.NewFormItem("Checked at", widget.NewLabel(v.RefTime.Local().Format("2006-01-02 15:04"))),
		widget.NewFormItem("Digest", widget.NewLabel(short(v.Digest, 24))),
	)
	out = append(out, facts)
	if v.Older {
		out = append(out, wrapLabel("Older than the newest metadata seen here: accepted because the newest targets still list its firmware."))
	}
	for _, w := range v.Warnings {
		out = append(out, wrapLabel("⚠ "+safe(w)))
	}
	out = append(out, boldLabel("Signed by"))
	for _, r := range v.Roles {
		ids := make([]string, len(r.SignedBy))
		for i, id := range r.SignedBy {
			ids[i] = short(safe(id), 8)
		}
		mark := "✔"
		if len(r.SignedBy) < r.Threshold {
			mark = "✘"
		}
		out = append(out, wrapLabel(fmt.Sprintf("%s %s v%d: %d of %d keys needed (%s), expires %s",
			mark, safe(r.Name), r.Version, len(r.SignedBy), r.Threshold, strings.Join(ids, ", "), r.Expires.Local().Format("2006-01-02"))))
	}
	out = append(out, boldLabel("Firmware"))
	for _, t := range v.Targets {
		m := t.Meta
		lines := []fyne.CanvasObject{
			widget.NewForm(
				widget.NewFormItem("Version", widget.NewLabel(safe(m.Component+" "+m.Version))),
				widget.NewFormItem("Hardware", wrapLabel(safe(strings.Join(m.HardwareIDs, ", ")))),
				widget.NewFormItem("Release counter", widget.NewLabel(fmt.Sprint(m.ReleaseCounter))),
				widget.NewFormItem("Size", widget.NewLabel(app.Bytes(t.Length))),
			),
		}
		if len(m.Requires) > 0 {
			var rs []string
			for _, r := range m.Requires {
				rs = append(rs, safe(r.Component+" "+r.Version))
			}
			lines = append(lines, wrapLabel("Requires "+strings.Join(rs, ", ")))
		}
		if len(m.Advisories) > 0 {
			lines = append(lines, wrapLabel("Fixes "+safe(strings.Join(m.Advisories, ", "))))
		}
		if m.ReleaseNotes != "" {
			lines = append(lines, wrapLabel(safeLines(strings.TrimSpace(m.ReleaseNotes))))
		}
		out = append(out, widget.NewCard(safe(t.Path), "", container.NewVBox(lines...)))
	}
	return out
}

func refusalCard(b *BundleState) []fyne.CanvasObject {
	out := []fyne.CanvasObject{bigText("Not trusted", colorOf(theme.ColorNameError), 2.6), widget.NewLabel(safe(b.Path))}
	var ve *app.VerifyError
	if errors.As(b.Err, &ve) {
		what := safe(ve.Reason)
		if ve.Thing != "" {
			what = safe(ve.Thing + ": " + ve.Reason)
		}
		out = append(out,
			boldLabel("Why"), wrapLabel(what),
			boldLabel("What to do"), wrapLabel(orDefault(safe(ve.Next), "Ask the vendor for a bundle signed for this computer's trust roots.")))
	} else {
		out = append(out, boldLabel("Why"), wrapLabel(safe(b.Err.Error())),
			boldLabel("What to do"), wrapLabel("Check that the file exists and can be read, then open it again."))
	}
	out = append(out, wrapLabel("Nothing from this bundle can be flashed."))
	return out
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
