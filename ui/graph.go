//go:build cgo

package ui

import (
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Graph is a small live throughput graph: the last samples as a line, scaled to the
// highest of them, so a stall (a pulled cable) shows as a drop to the floor.
type Graph struct {
	widget.BaseWidget
	samples []float64
}

func newGraph() *Graph {
	g := &Graph{}
	g.ExtendBaseWidget(g)
	return g
}

// Set replaces the samples and redraws.
func (g *Graph) Set(samples []float64) {
	if slices.Equal(g.samples, samples) {
		return
	}
	g.samples = append(g.samples[:0], samples...)
	g.Refresh()
}

func (g *Graph) CreateRenderer() fyne.WidgetRenderer {
	r := &graphRenderer{g: g, frame: canvas.NewRectangle(color.Transparent)}
	r.frame.StrokeWidth = 1
	for i := range r.lines {
		r.lines[i] = canvas.NewLine(theme.Color(theme.ColorNamePrimary))
		r.lines[i].StrokeWidth = 2
	}
	return r
}

type graphRenderer struct {
	g     *Graph
	frame *canvas.Rectangle
	lines [graphSamples - 1]*canvas.Line
	size  fyne.Size
}

func (r *graphRenderer) Layout(s fyne.Size) {
	r.size = s
	r.frame.Resize(s)
	r.place()
}

func (r *graphRenderer) MinSize() fyne.Size { return fyne.NewSize(200, 48) }

func (r *graphRenderer) place() {
	s := r.g.samples
	peak := 0.0
	for _, v := range s {
		peak = max(peak, v)
	}
	w, h := r.size.Width, r.size.Height
	step := w / float32(graphSamples-1)
	// The newest sample sits at the right edge.
	off := graphSamples - len(s)
	y := func(v float64) float32 {
		if peak <= 0 {
			return h - 1
		}
		return h - 1 - float32(v/peak)*(h-2)
	}
	for i, l := range r.lines {
		a, b := i-off, i+1-off
		if a < 0 || b >= len(s) {
			l.Hide()
			continue
		}
		l.Position1 = fyne.NewPos(float32(i)*step, y(s[a]))
		l.Position2 = fyne.NewPos(float32(i+1)*step, y(s[b]))
		l.Show()
	}
}

func (r *graphRenderer) Refresh() {
	r.frame.StrokeColor = theme.Color(theme.ColorNameSeparator)
	r.frame.FillColor = theme.Color(theme.ColorNameInputBackground)
	for _, l := range r.lines {
		l.StrokeColor = theme.Color(theme.ColorNamePrimary)
	}
	r.place()
	r.frame.Refresh()
	for _, l := range r.lines {
		l.Refresh()
	}
}

func (r *graphRenderer) Objects() []fyne.CanvasObject {
	out := []fyne.CanvasObject{r.frame}
	for _, l := range r.lines {
		out = append(out, l)
	}
	return out
}

func (r *graphRenderer) Destroy() {}
