//go:build cgo

package ui

import (
	"fmt"
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

func bindingListener(f func()) binding.DataListener { return binding.NewDataListener(f) }

// Button is a widget.Button that Enter and Return press too, not only Space: keyboard
// users expect Enter on a focused button.
type Button struct {
	widget.Button
}

func newButton(label string, icon fyne.Resource, tapped func()) *Button {
	b := &Button{}
	b.Text, b.Icon, b.OnTapped = label, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

func newPrimary(label string, icon fyne.Resource, tapped func()) *Button {
	b := newButton(label, icon, tapped)
	b.Importance = widget.HighImportance
	return b
}

// TypedKey presses the button on Space, Enter and Return.
func (b *Button) TypedKey(ev *fyne.KeyEvent) {
	switch ev.Name {
	case fyne.KeyReturn, fyne.KeyEnter:
		if !b.Disabled() && b.OnTapped != nil {
			b.OnTapped()
		}
		return
	}
	b.Button.TypedKey(ev)
}

// bigText is a headline in large words: Trusted / Not trusted, the simple mode's title.
func bigText(s string, c color.Color, scale float32) *canvas.Text {
	t := canvas.NewText(s, c)
	t.TextSize = theme.TextSize() * scale
	t.TextStyle.Bold = true
	return t
}

func colorOf(name fyne.ThemeColorName) color.Color {
	return theme.Color(name)
}

func wrapLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func boldLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.TextStyle.Bold = true
	l.Wrapping = fyne.TextWrapWord
	return l
}

// progressText is bytes, rate and time left, as the CLI's bar shows them.
func progressText(bytes, total int64, rate float64, eta time.Duration) string {
	if total <= 0 {
		return ""
	}
	s := fmt.Sprintf("%s of %s", app.Bytes(bytes), app.Bytes(total))
	if rate > 0 {
		s += fmt.Sprintf(" · %s/s", app.Bytes(int64(rate)))
		if bytes < total {
			s += " · about " + app.Duration(eta) + " left"
		}
	}
	return s
}

// setText changes a label only when its text changes: a refresh re-lays out the screen.
func setText(l *widget.Label, s string) {
	if l.Text != s {
		l.SetText(s)
	}
}

func setButton(b *Button, s string) {
	if b.Text != s {
		b.SetText(s)
	}
}

// safe is text that did not come from this program (bundle fields, what a device
// reports, paths), with control characters, bidirectional overrides and zero-width marks
// escaped (app.Text): a release note must not reorder what the technician reads.
func safe(s string) string { return app.Text(s) }

// safeLines is safe for text whose line breaks are meant (release notes).
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = app.Text(l)
	}
	return strings.Join(lines, "\n")
}
