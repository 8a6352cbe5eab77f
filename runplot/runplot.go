// Package runplot draws a run's metrics (package runmetrics) with gonum/plot:
// three panels against step, sharing the step axis: train and val loss,
// learning rate, tokens/s; every panel marks the generation changes (where
// the job's membership changed) with a dashed vertical line, labelled on the
// loss panel. PNG and SVG.
//
//	fig, err := runplot.New(log, "run name")
//	err = fig.Render(w, runplot.PNG, 1200, 900)
package runplot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ringtrain/ringtrain/runmetrics"
)

// Format is an output file format.
type Format string

// Formats.
const (
	PNG Format = "png"
	SVG Format = "svg"
)

// FormatOf returns the format named by path's extension.
func FormatOf(path string) (Format, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png":
		return PNG, nil
	case ".svg":
		return SVG, nil
	default:
		return "", fmt.Errorf("%s: want a .png or .svg file name", path)
	}
}

// Figure is what gets drawn: one series per curve, in steps.
type Figure struct {
	Title      string
	TrainLoss  plotter.XYs
	ValLoss    plotter.XYs // evaluation steps only
	LR         plotter.XYs
	TokensPerS plotter.XYs // steps whose throughput was measured (not 0)
	Changes    []runmetrics.Change
}

// New takes the series of l. It needs at least one step.
func New(l *runmetrics.Log, title string) (*Figure, error) {
	if len(l.Steps) == 0 {
		return nil, errors.New("no step lines to plot")
	}
	f := &Figure{Title: title, Changes: l.Generations()}
	for _, s := range l.Steps {
		x := float64(s.Step)
		f.TrainLoss = append(f.TrainLoss, plotter.XY{X: x, Y: s.Loss})
		f.LR = append(f.LR, plotter.XY{X: x, Y: s.LR})
		if s.ValLoss != nil {
			f.ValLoss = append(f.ValLoss, plotter.XY{X: x, Y: *s.ValLoss})
		}
		if s.TokensPerS > 0 {
			f.TokensPerS = append(f.TokensPerS, plotter.XY{X: x, Y: s.TokensPerS})
		}
	}
	return f, nil
}

var (
	trainColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	valColor   = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	lrColor    = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	tpsColor   = color.RGBA{R: 148, G: 103, B: 189, A: 255}
	markColor  = color.RGBA{R: 120, G: 120, B: 120, A: 255}
)

// Render draws the figure as format, widthPx × heightPx pixels for PNG (the
// same size at 96 pixels per inch for SVG).
func (f *Figure) Render(w io.Writer, format Format, widthPx, heightPx int) error {
	if widthPx < 200 || heightPx < 200 {
		return fmt.Errorf("size %dx%d: want at least 200x200 pixels", widthPx, heightPx)
	}
	const dpi = 96
	width, height := vg.Length(widthPx)*vg.Inch/dpi, vg.Length(heightPx)*vg.Inch/dpi
	panels, err := f.panels()
	if err != nil {
		return err
	}
	var c vg.CanvasWriterTo
	switch format {
	case PNG:
		img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
		c = vgimg.PngCanvas{Canvas: img}
	case SVG:
		c = vgsvg.New(width, height)
	default:
		return fmt.Errorf("format %q: want png or svg", format)
	}
	rows := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		rows[i] = []*plot.Plot{p}
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(14), PadY: vg.Points(6)}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	_, err = c.WriteTo(w)
	return err
}

// panels builds the three plots, top to bottom.
func (f *Figure) panels() ([]*plot.Plot, error) {
	loss := plot.New()
	loss.Title.Text = f.Title
	loss.Y.Label.Text = "loss"
	train, err := line(f.TrainLoss, trainColor)
	if err != nil {
		return nil, err
	}
	loss.Add(plotter.NewGrid(), train)
	loss.Legend.Add("train", train)
	if len(f.ValLoss) > 0 {
		l, s, err := plotter.NewLinePoints(f.ValLoss)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = valColor, vg.Points(1.5)
		s.Color, s.GlyphStyle.Radius = valColor, vg.Points(2.5)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		loss.Add(l, s)
		loss.Legend.Add("val", l, s)
	}
	loss.Legend.Top = true

	lr := plot.New()
	lr.Y.Label.Text = "learning rate"
	lrLine, err := line(f.LR, lrColor)
	if err != nil {
		return nil, err
	}
	lr.Add(plotter.NewGrid(), lrLine)

	tps := plot.New()
	tps.Y.Label.Text = "tokens/s"
	tps.Y.Tick.Marker = wholeTicks{}
	tps.X.Label.Text = "step"
	tps.Add(plotter.NewGrid())
	if len(f.TokensPerS) > 0 {
		l, err := line(f.TokensPerS, tpsColor)
		if err != nil {
			return nil, err
		}
		tps.Add(l)
	}

	panels := []*plot.Plot{loss, lr, tps}
	xmin, xmax := f.TrainLoss[0].X, f.TrainLoss[len(f.TrainLoss)-1].X
	if xmax == xmin {
		xmax = xmin + 1
	}
	for i, p := range panels {
		p.X.Min, p.X.Max = xmin, xmax
		if len(f.Changes) > 0 {
			m := &marks{changes: f.Changes, labelled: i == 0}
			p.Add(m)
			if i == 0 {
				p.Legend.Add("generation change", m)
			}
		}
	}
	return panels, nil
}

func line(xys plotter.XYs, c color.Color) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = c, vg.Points(1.2)
	return l, nil
}

// marks draws a dashed vertical line over the whole panel at each change,
// with the generation and world size written beside it when labelled.
type marks struct {
	changes  []runmetrics.Change
	labelled bool
}

var markStyle = draw.LineStyle{Color: markColor, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}

func (m *marks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	ts := p.X.Tick.Label
	ts.Color, ts.XAlign, ts.YAlign = markColor, draw.XLeft, draw.YTop
	for _, ch := range m.changes {
		x := trX(float64(ch.Step))
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		c.StrokeLine2(markStyle, x, c.Min.Y, x, c.Max.Y)
		if !m.labelled {
			continue
		}
		label := fmt.Sprintf("%d workers", ch.WorldSize)
		if ch.Generation > 0 {
			label = fmt.Sprintf("gen %d, %s", ch.Generation, label)
		}
		c.FillText(ts, vg.Point{X: x + vg.Points(3), Y: c.Max.Y - vg.Points(2)}, label)
	}
}

// Thumbnail draws the legend entry.
func (m *marks) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(markStyle, x, c.Min.Y, x, c.Max.Y)
}

// wholeTicks labels the default ticks as whole numbers ("175000", not
// "175000.00").
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}
