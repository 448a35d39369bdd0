//go:build cgo

package ui

// The headless tests drive the window as a person does, through Fyne's test driver:
// they find buttons by their words and tap them, and read what the screens say. Below
// the window everything is real: the demo's virtual devices on pseudo-terminals, the
// demo bundle, the engine and its journals.

import (
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/fieldflash/fieldflash/app"
)

// uiQueue stands for the UI goroutine: device goroutines post to it and the test
// goroutine runs what was posted, so no widget is touched from two goroutines at once
// (Fyne's test driver would run fyne.Do at once, on the caller's goroutine).
type uiQueue struct {
	mu sync.Mutex
	fs []func()
}

func (q *uiQueue) post(f func()) { q.mu.Lock(); q.fs = append(q.fs, f); q.mu.Unlock() }

func (q *uiQueue) drain() {
	for {
		q.mu.Lock()
		fs := q.fs
		q.fs = nil
		q.mu.Unlock()
		if len(fs) == 0 {
			return
		}
		for _, f := range fs {
			f()
		}
	}
}

type harness struct {
	t    *testing.T
	q    *uiQueue
	st   *State
	sh   *Shell
	w    fyne.Window
	demo *app.Demo
}

// newHarness opens the window in a fresh $FIELDFLASH_HOME; with demo it starts the
// demo's virtual devices at baud.
func newHarness(t *testing.T, demo bool, baud int, opt Options) *harness {
	t.Helper()
	t.Setenv(app.HomeEnv, t.TempDir())
	a := test.NewApp()
	t.Cleanup(func() { a.Quit() })
	h := &harness{t: t, q: &uiQueue{}}
	if demo {
		d, err := app.StartDemo(app.DemoOptions{SMPBaud: baud, YMODEMBaud: baud})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		h.demo, opt.Demo = d, d
	}
	opt.Do = h.q.post
	opt.WatchEvery = 100 * time.Millisecond
	st, err := NewState(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	h.st = st
	h.w = a.NewWindow("fieldflash")
	h.sh = NewShell(h.w, st)
	h.w.Resize(fyne.NewSize(1366, 768))
	return h
}

// waitFor runs the UI queue until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		h.q.drain()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited 90 s for %s; the window shows:\n%s", what, strings.Join(h.texts(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitText(s string) {
	h.t.Helper()
	h.waitFor("“"+s+"”", func() bool { return h.shows(s) })
}

// objects are the visible objects of the window, overlays (dialogs) included.
func (h *harness) objects() []fyne.CanvasObject {
	c := h.w.Canvas()
	var out []fyne.CanvasObject
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		out = append(out, o)
		switch x := o.(type) {
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.TempWidgetRenderer(h.t, x).Objects() {
				walk(c)
			}
		}
	}
	walk(c.Content())
	for _, o := range c.Overlays().List() {
		walk(o)
	}
	return out
}

// texts is every piece of text the window draws.
func (h *harness) texts() []string {
	var out []string
	for _, o := range h.objects() {
		switch x := o.(type) {
		case *canvas.Text:
			out = append(out, x.Text)
		case *widget.Label:
			out = append(out, x.Text)
		}
	}
	return out
}

func (h *harness) shows(s string) bool {
	for _, t := range h.texts() {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// button finds an enabled, visible button by its words, outside the navigation
// (h.nav goes there).
func (h *harness) button(label string) fyne.Tappable {
	nav := map[*Button]bool{}
	for _, b := range h.sh.navs {
		nav[b] = true
	}
	for _, o := range h.objects() {
		switch b := o.(type) {
		case *Button:
			if nav[b] {
				continue
			}
			if strings.Contains(b.Text, label) && !b.Disabled() {
				return b
			}
		case *widget.Button:
			if strings.Contains(b.Text, label) && !b.Disabled() {
				return b
			}
		}
	}
	return nil
}

// tap presses the button with label, waiting until it is there and enabled.
func (h *harness) tap(label string) {
	h.t.Helper()
	var b fyne.Tappable
	h.waitFor("an enabled button “"+label+"”", func() bool { b = h.button(label); return b != nil })
	test.Tap(b)
	h.q.drain()
}

// check ticks the check box with label.
func (h *harness) check(label string) {
	h.t.Helper()
	var c *widget.Check
	h.waitFor("a check box “"+label+"”", func() bool {
		for _, o := range h.objects() {
			if x, ok := o.(*widget.Check); ok && strings.Contains(x.Text, label) {
				c = x
				return true
			}
		}
		return false
	})
	if !c.Checked {
		test.Tap(c)
	}
	h.q.drain()
}

// nav switches screens through the navigation list, as a click on it does.
func (h *harness) nav(id string) {
	h.t.Helper()
	for _, s := range h.sh.shown {
		if s.ID == id {
			test.Tap(h.sh.navs[id])
			h.q.drain()
			if h.sh.Current() != id {
				h.t.Fatalf("selecting %s in the navigation shows %s", id, h.sh.Current())
			}
			return
		}
	}
	h.t.Fatalf("no screen %s in mode %s", id, h.sh.mode)
}

func (h *harness) job(port string) *Job {
	if b := h.st.Batch(); b != nil {
		return b.Job(port)
	}
	return nil
}

// waitDevicesKnown waits until both demo devices are listed and answered.
func (h *harness) waitDevicesKnown() {
	h.t.Helper()
	h.waitFor("both demo devices to answer", func() bool {
		n := 0
		for _, r := range h.st.Rows() {
			if r.Fit != nil {
				n++
			}
		}
		return n == 2
	})
}
