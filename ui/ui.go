//go:build cgo

package ui

import (
	"image/color"
	"os"
	"strconv"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/theme"

	"github.com/fieldflash/fieldflash/app"
)

// AppID is the desktop app's id (FyneApp.toml).
const AppID = "io.github.fieldflash"

// Run opens the window and returns when it is closed: the exit code.
func Run(opt Options) int {
	a := fyneapp.NewWithID(AppID)
	a.SetIcon(fyne.NewStaticResource("fieldflash.png", app.Icon()))
	w := a.NewWindow("fieldflash")
	st, err := NewState(opt)
	if err != nil {
		return fatalWindow(a, w, err)
	}
	defer st.Close()
	applyTheme(st.Settings.Theme)
	sh := NewShell(w, st)
	w.Resize(windowSize(a))
	w.SetMaster()
	startMeasuring(w, sh)
	w.ShowAndRun()
	return 0
}

// windowSize is the first size of the window: 1100x720, smaller when the scale asked for
// (FYNE_SCALE or Fyne's settings) would not fit it on a 1366x768 screen, the smallest
// laptop screen fieldflash is made for. Every screen scrolls rather than overflow.
func windowSize(a fyne.App) fyne.Size {
	scale := a.Settings().Scale()
	if v, err := strconv.ParseFloat(os.Getenv("FYNE_SCALE"), 32); err == nil && v > 0 {
		scale = float32(v)
	}
	if scale <= 0 {
		scale = 1
	}
	return fyne.NewSize(min(1100, 1340/scale), min(720, 700/scale))
}

// fatalWindow shows why the app cannot start ($FIELDFLASH_HOME unusable) instead of a
// window that silently does nothing.
func fatalWindow(_ fyne.App, w fyne.Window, err error) int {
	w.SetContent(wrapLabel("fieldflash cannot start: " + err.Error()))
	w.Resize(fyne.NewSize(640, 200))
	w.ShowAndRun()
	return 3
}

// applyTheme sets the light or dark variant, or follows the system.
func applyTheme(name string) {
	a := fyne.CurrentApp()
	if a == nil {
		return
	}
	switch name {
	case app.ThemeLight:
		a.Settings().SetTheme(variantTheme{theme.VariantLight})
	case app.ThemeDark:
		a.Settings().SetTheme(variantTheme{theme.VariantDark})
	default:
		a.Settings().SetTheme(theme.DefaultTheme())
	}
}

// variantTheme is Fyne's default theme held to one variant.
type variantTheme struct{ v fyne.ThemeVariant }

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return theme.DefaultTheme().Color(n, t.v)
}
func (t variantTheme) Font(s fyne.TextStyle) fyne.Resource     { return theme.DefaultTheme().Font(s) }
func (t variantTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return theme.DefaultTheme().Icon(n) }
func (t variantTheme) Size(n fyne.ThemeSizeName) float32       { return theme.DefaultTheme().Size(n) }
