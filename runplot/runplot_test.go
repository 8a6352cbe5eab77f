package runplot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/runmetrics"
)

func fixture(t *testing.T) *Figure {
	t.Helper()
	l, err := runmetrics.ReadFile("../runmetrics/testdata/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(l, "fixture")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSeries(t *testing.T) {
	f := fixture(t)
	// 120 steps, 4 of them evals, step 0 without a measured throughput;
	// changes at step 0 and 40 (generation events) and 90 (world size 3 -> 2).
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"train loss", len(f.TrainLoss), 120},
		{"val loss", len(f.ValLoss), 4},
		{"learning rate", len(f.LR), 120},
		{"tokens/s", len(f.TokensPerS), 119},
		{"generation changes", len(f.Changes), 3},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d points, want %d", c.name, c.got, c.want)
		}
	}
	if f.ValLoss[0].X != 29 || f.TokensPerS[0].X != 1 || f.Changes[2].Step != 90 {
		t.Errorf("first val at %v, first tokens/s at %v, last change at %d", f.ValLoss[0].X, f.TokensPerS[0].X, f.Changes[2].Step)
	}
}

func TestRenderPNG(t *testing.T) {
	var b bytes.Buffer
	if err := fixture(t).Render(&b, PNG, 640, 480); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 640 || r.Dy() != 480 {
		t.Fatalf("PNG is %dx%d, want 640x480", r.Dx(), r.Dy())
	}
	// Not blank: the curves put colours other than white, grey and black.
	coloured := 0
	for y := 0; y < 480; y += 2 {
		for x := 0; x < 640; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if r != g || g != b {
				coloured++
			}
		}
	}
	if coloured < 200 {
		t.Fatalf("%d coloured pixels sampled: the curves are missing", coloured)
	}
}

func TestRenderSVG(t *testing.T) {
	f := fixture(t)
	var b bytes.Buffer
	if err := f.Render(&b, SVG, 1200, 900); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var root *xml.StartElement
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == nil {
			root = &se
		}
	}
	if root == nil || root.Name.Local != "svg" {
		t.Fatalf("root element %v, want svg", root)
	}
	attrs := map[string]string{}
	for _, a := range root.Attr {
		attrs[a.Name.Local] = a.Value
	}
	if attrs["width"] != "900pt" || attrs["height"] != "675pt" { // 1200x900 px at 96/inch
		t.Errorf("svg size %s x %s, want 900pt x 675pt", attrs["width"], attrs["height"])
	}
	// One dashed line per change in each of the three panels, one in the legend.
	if got, want := strings.Count(b.String(), "stroke-dasharray:4,3"), 3*len(f.Changes)+1; got != want {
		t.Errorf("%d dashed lines, want %d", got, want)
	}
}

func TestErrors(t *testing.T) {
	if _, err := New(&runmetrics.Log{}, "empty"); err == nil {
		t.Error("plot of no steps")
	}
	if _, err := FormatOf("loss.jpg"); err == nil || !strings.Contains(err.Error(), "loss.jpg: want a .png or .svg") {
		t.Errorf("FormatOf(loss.jpg): %v", err)
	}
	if f, err := FormatOf("x/LOSS.SVG"); f != SVG || err != nil {
		t.Errorf("FormatOf(LOSS.SVG) = %v, %v", f, err)
	}
	if err := fixture(t).Render(io.Discard, PNG, 10, 10); err == nil {
		t.Error("10x10 accepted")
	}
}
