//go:build cgo

package ui

import (
	"encoding/json"
	"image/color"
	"os"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// TraceEnv turns on the measurement hook for benchmarks and the real-window test: the
// path of a file that gets one JSON object per line.
//
//	{"ev":"fps","n":58,"t":…}               frames drawn in the last second
//	{"ev":"show","id":"devices","t":…,"frame":…}  a screen was shown, and the first frame after it
//	{"ev":"layout","id":"nav-devices","x":…,"y":…,"w":…,"h":…}  where a control is (window coordinates)
//	{"ev":"screen","id":"bundle","texts":[…]}  what the current screen shows (on SIGUSR1)
//
// Frames are counted by a 1-pixel animation: Fyne ticks animations in its draw loop
// right before it paints, so a tick is a frame the loop drew, and a loop busy with
// something else ticks less. The animated pixel keeps the window repainting every
// frame, as a spinner would; without the hook nothing of this runs.
const TraceEnv = "FIELDFLASH_UI_TRACE"

type tracer struct {
	mu        sync.Mutex
	enc       *json.Encoder
	f         *os.File
	frames    int
	pending   []map[string]any // shows waiting for their first frame
	sh        *Shell
	laidOut   bool
	lastCount time.Time
}

func (t *tracer) write(m map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.enc.Encode(m)
}

func now() int64 { return time.Now().UnixNano() }

func (t *tracer) shown(id string) {
	t.mu.Lock()
	t.pending = append(t.pending, map[string]any{"ev": "show", "id": id, "t": now()})
	t.mu.Unlock()
}

// tick runs in the draw loop, once a frame.
func (t *tracer) tick() {
	ts := now()
	t.mu.Lock()
	t.frames++
	p := t.pending
	t.pending = nil
	first := t.frames == 1
	t.mu.Unlock()
	if first {
		t.write(map[string]any{"ev": "first-tick", "t": ts})
	}
	for _, m := range p {
		m["frame"] = ts
		t.write(m)
	}
	if !t.laidOut && t.frames > 2 {
		t.laidOut = true
		t.layout()
	}
	if time.Since(t.lastCount) >= time.Second {
		t.mu.Lock()
		n := t.frames
		t.frames = 0
		t.mu.Unlock()
		if !t.lastCount.IsZero() {
			t.write(map[string]any{"ev": "fps", "n": n, "t": ts})
		}
		t.lastCount = time.Now()
	}
}

// job reports a device's update as the window shows it.
func (t *tracer) job(j *Job) {
	m := map[string]any{"ev": "job", "port": j.Port, "step": j.Step, "bytes": j.Bytes, "total": j.Total, "running": j.Running, "waiting": j.Waiting, "t": now()}
	if j.Result != nil {
		m["status"] = int(j.Result.Status)
	}
	t.write(m)
}

// layout reports where the navigation buttons are, for clicks from outside.
func (t *tracer) layout() {
	d := fyne.CurrentApp().Driver()
	for id, b := range t.sh.navs {
		p := d.AbsolutePositionForObject(b)
		s := b.Size()
		scale := t.sh.Window.Canvas().Scale()
		t.write(map[string]any{"ev": "layout", "id": "nav-" + id, "x": p.X * scale, "y": p.Y * scale, "w": s.Width * scale, "h": s.Height * scale})
	}
}

// dump writes what the current screen shows.
func (t *tracer) dump() {
	var texts []string
	var buttons []*Button
	walkTexts(t.sh.Window.Content(), &texts, &buttons)
	for _, o := range t.sh.Window.Canvas().Overlays().List() {
		walkTexts(o, &texts, &buttons)
	}
	d := fyne.CurrentApp().Driver()
	scale := t.sh.Window.Canvas().Scale()
	var pos []map[string]any
	for _, b := range buttons {
		p, s := d.AbsolutePositionForObject(b), b.Size()
		pos = append(pos, map[string]any{"text": b.Text, "x": p.X * scale, "y": p.Y * scale, "w": s.Width * scale, "h": s.Height * scale, "enabled": !b.Disabled()})
	}
	t.write(map[string]any{"ev": "screen", "id": t.sh.Current(), "title": t.sh.Window.Title(), "texts": texts, "buttons": pos})
}

// walkTexts collects the visible text of the widgets the screens use.
func walkTexts(o fyne.CanvasObject, out *[]string, buttons *[]*Button) {
	if o == nil || !o.Visible() {
		return
	}
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walkTexts(c, out, buttons)
		}
	case *container.Scroll:
		walkTexts(x.Content, out, buttons)
	case *container.Split:
		walkTexts(x.Leading, out, buttons)
		walkTexts(x.Trailing, out, buttons)
	case *canvas.Text:
		*out = append(*out, x.Text)
	case *widget.Label:
		*out = append(*out, x.Text)
	case *Button:
		*out = append(*out, "["+x.Text+"]")
		*buttons = append(*buttons, x)
	case *widget.Button:
		*out = append(*out, "["+x.Text+"]")
	case *widget.Check:
		*out = append(*out, "[ ] "+x.Text)
	case *widget.Card:
		*out = append(*out, x.Title)
		walkTexts(x.Content, out, buttons)
	case *widget.Form:
		for _, it := range x.Items {
			*out = append(*out, it.Text)
			walkTexts(it.Widget, out, buttons)
		}
	case *widget.Select:
		*out = append(*out, "<"+x.Selected+">")
	case *widget.RadioGroup:
		*out = append(*out, x.Options...)
	case *widget.ProgressBar:
		*out = append(*out, "progress")
	}
}

func startMeasuring(w fyne.Window, sh *Shell) {
	path := os.Getenv(TraceEnv)
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	t := &tracer{f: f, enc: json.NewEncoder(f), sh: sh}
	sh.trace, sh.State.trace = t, t
	dot := canvas.NewRectangle(color.NRGBA{A: 1})
	dot.Resize(fyne.NewSize(1, 1))
	w.SetContent(container.NewStack(w.Content(), container.NewWithoutLayout(dot)))
	on := false
	a := fyne.NewAnimation(time.Second, func(float32) {
		on = !on
		if on {
			dot.FillColor = color.NRGBA{A: 2}
		} else {
			dot.FillColor = color.NRGBA{A: 1}
		}
		dot.Refresh()
		t.tick()
	})
	a.RepeatCount = fyne.AnimationRepeatForever
	a.Curve = fyne.AnimationLinear
	a.Start()
	onDumpSignal(func() { fyne.Do(t.dump) })
}
