//go:build cgo

package ui

import (
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

// Screen is one screen of the window: a file of its own (screen_*.go) registers it in
// its init with Register, as Fyne's demo does. To add a screen (History from the audit
// log, telemetry, self-update), add a file that calls Register; nothing else changes.
type Screen struct {
	ID    string // stable name, for Shell.Show and tests
	Title string
	Icon  fyne.ThemeIconName // resolved when drawn: screens register before the app starts
	// Order places it in the navigation (lower first).
	Order int
	// Modes lists the modes it shows in (app.ModeTechnician, app.ModeSimple); empty: all.
	Modes []string
	// View builds the screen once per window.
	View func(sh *Shell) fyne.CanvasObject
}

var screens []Screen

// Register adds a screen to every window made after it.
func Register(s Screen) {
	screens = append(screens, s)
	slices.SortStableFunc(screens, func(a, b Screen) int { return a.Order - b.Order })
}

// Shell is one window: navigation on the left, the current screen on the right, a
// status line at the bottom.
type Shell struct {
	State  *State
	Window fyne.Window

	nav     *fyne.Container // one button per screen: Tab reaches each, Enter opens it
	navs    map[string]*Button
	content *fyne.Container
	views   map[string]fyne.CanvasObject
	shown   []Screen
	current string
	body    *fyne.Container
	mode    string
	wizard  *recovery
	trace   *tracer
	// escape runs on Escape: the current screen's way back or cancel.
	escape map[string]func()
}

// NewShell builds the window's content over st and installs keyboard shortcuts.
func NewShell(w fyne.Window, st *State) *Shell {
	sh := &Shell{State: st, Window: w, views: map[string]fyne.CanvasObject{}, escape: map[string]func(){}}
	sh.content = container.NewStack()
	sh.nav = container.NewVBox()
	status := widget.NewLabelWithData(st.Status)
	status.Truncation = fyne.TextTruncateEllipsis
	top := sh.banner()
	sh.body = container.NewStack()
	w.SetContent(container.NewBorder(top, container.NewPadded(status), nil, nil, sh.body))
	st.Mode.AddListener(bindingListener(func() {
		m, _ := st.Mode.Get()
		if m != sh.mode {
			sh.setMode(m)
		}
	}))
	sh.setMode(st.Settings.Mode)
	sh.shortcuts()
	w.SetOnDropped(func(_ fyne.Position, uris []fyne.URI) {
		for _, u := range uris {
			if strings.HasSuffix(strings.ToLower(u.Path()), ".fwb") {
				st.OpenBundle(u.Path())
				if sh.mode == app.ModeTechnician {
					sh.Show("bundle")
				}
				return
			}
		}
		st.Status.Set("Drop a firmware bundle (.fwb) onto the window to open it.")
	})
	for _, f := range onStart {
		f(sh)
	}
	return sh
}

// onStart are what files of this package run once the window's shell exists (the
// telemetry uploader, for one).
var onStart []func(*Shell)

// OnStart runs f when a shell is made (from an init function).
func OnStart(f func(*Shell)) { onStart = append(onStart, f) }

// banners are extra rows under the title (the telemetry question, for one): each returns
// nil when it has nothing to say.
var banners []func(*Shell) fyne.CanvasObject

// RegisterBanner adds a row under the title (from an init function).
func RegisterBanner(f func(*Shell) fyne.CanvasObject) { banners = append(banners, f) }

func (sh *Shell) banner() fyne.CanvasObject {
	title := canvas.NewText("fieldflash", theme.Color(theme.ColorNameForeground))
	title.TextSize = theme.TextHeadingSize()
	title.TextStyle.Bold = true
	items := []fyne.CanvasObject{title}
	if sh.State.Demo() != nil {
		items = append(items, widget.NewLabel("Demo mode: virtual devices and the demo bundle (trusted in demo mode only)"))
	}
	rows := []fyne.CanvasObject{container.NewHBox(items...), newUpdateBanner(sh)}
	for _, b := range banners {
		if o := b(sh); o != nil {
			rows = append(rows, o)
		}
	}
	return container.NewPadded(container.NewVBox(rows...))
}

// setMode shows the screens of a mode.
func (sh *Shell) setMode(mode string) {
	sh.mode = mode
	sh.shown = nil
	for _, s := range screens {
		if len(s.Modes) == 0 || slices.Contains(s.Modes, mode) {
			sh.shown = append(sh.shown, s)
		}
	}
	if mode == app.ModeSimple {
		sh.body.Objects = []fyne.CanvasObject{sh.content}
	} else {
		sh.body.Objects = []fyne.CanvasObject{container.NewBorder(nil, nil, container.NewPadded(sh.nav), nil, sh.content)}
	}
	sh.nav.Objects = nil
	sh.navs = map[string]*Button{}
	for _, sc := range sh.shown {
		b := newButton(sc.Title, theme.Icon(sc.Icon), func() { sh.Show(sc.ID) })
		b.Alignment = widget.ButtonAlignLeading
		b.Importance = widget.LowImportance
		sh.navs[sc.ID] = b
		sh.nav.Add(b)
	}
	sh.body.Refresh()
	if len(sh.shown) > 0 {
		first := sh.shown[0].ID
		if slices.ContainsFunc(sh.shown, func(s Screen) bool { return s.ID == sh.current }) {
			first = sh.current
		}
		sh.current = ""
		sh.Show(first)
	}
}

// Show switches to the screen with id.
func (sh *Shell) Show(id string) {
	i := slices.IndexFunc(sh.shown, func(s Screen) bool { return s.ID == id })
	if i < 0 {
		// A screen of the other mode (the simple screen's "more options"): switch mode.
		j := slices.IndexFunc(screens, func(s Screen) bool { return s.ID == id })
		if j < 0 {
			return
		}
		sh.State.Mode.Set(screens[j].Modes[0])
		if sh.mode != screens[j].Modes[0] {
			sh.setMode(screens[j].Modes[0])
		}
		i = slices.IndexFunc(sh.shown, func(s Screen) bool { return s.ID == id })
		if i < 0 {
			return
		}
	}
	sc := sh.shown[i]
	v, ok := sh.views[id]
	if !ok {
		v = sc.View(sh)
		sh.views[id] = v
	}
	sh.current = id
	sh.content.Objects = []fyne.CanvasObject{v}
	sh.content.Refresh()
	for id, b := range sh.navs {
		imp := widget.LowImportance
		if id == sc.ID {
			imp = widget.HighImportance
		}
		if b.Importance != imp {
			b.Importance = imp
			b.Refresh()
		}
	}
	if sh.trace != nil {
		sh.trace.shown(sc.ID)
	}
}

// Current is the id of the screen shown.
func (sh *Shell) Current() string { return sh.current }

// OnEscape sets what Escape does while the screen id is shown.
func (sh *Shell) OnEscape(id string, f func()) { sh.escape[id] = f }

func (sh *Shell) shortcuts() {
	c := sh.Window.Canvas()
	add := func(k fyne.KeyName, f func()) {
		c.AddShortcut(&desktop.CustomShortcut{KeyName: k, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) { f() })
	}
	add(fyne.KeyO, func() { sh.OpenBundleDialog() })
	for i, k := range []fyne.KeyName{fyne.Key1, fyne.Key2, fyne.Key3, fyne.Key4, fyne.Key5, fyne.Key6, fyne.Key7, fyne.Key8, fyne.Key9} {
		add(k, func() {
			if i < len(sh.shown) {
				sh.Show(sh.shown[i].ID)
			}
		})
	}
	c.SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if ev.Name == fyne.KeyEscape {
			if f := sh.escape[sh.current]; f != nil {
				f()
			}
		}
	})
}
