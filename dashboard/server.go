package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"

	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/runplot"
)

// Source is what the dashboard shows: the job's newest status and the run
// directory whose metrics.jsonl it plots (*coordinator.Coordinator).
type Source interface {
	StatusProto() *pb.JobStatusResponse
	RunDir() string
}

//go:embed assets
var assets embed.FS

// MetricsFile is the history the charts are drawn from, in the run dir.
const MetricsFile = "metrics.jsonl"

// maxPoints bounds the steps drawn per curve: a long run is thinned to
// about this many (evaluations are always kept).
const maxPoints = 2000

// Server is the dashboard's HTTP handler.
type Server struct {
	src Source
	mux *http.ServeMux

	mu    sync.Mutex // guards hist and the cached chart
	hist  *history
	chart struct {
		version, w, h int
		svg           []byte
	}
}

var _ http.Handler = (*Server)(nil)

// New returns the dashboard of src.
func New(src Source) *Server {
	s := &Server{src: src, mux: http.NewServeMux(), hist: newHistory(filepath.Join(src.RunDir(), MetricsFile))}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	s.mux.HandleFunc("GET /api/status", s.status)
	s.mux.HandleFunc("GET /chart.svg", s.chartSVG)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	b, err := StatusJSON(s.src.StatusProto())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// chartSVG draws the run's history: 204 No Content before the first step.
func (s *Server) chartSVG(w http.ResponseWriter, r *http.Request) {
	width, err1 := sizeParam(r, "width", 1000)
	height, err2 := sizeParam(r, "height", 700)
	if err := firstErr(err1, err2); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	svg, err := s.render(width, height)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if svg == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(svg)
}

// render returns the charts of the newest history at width × height
// pixels (nil before the first step), drawn again only when the history
// or the size changed.
func (s *Server) render(width, height int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.hist.refresh(); err != nil {
		return nil, err
	}
	c := &s.chart
	if c.svg != nil && c.version == s.hist.version && c.w == width && c.h == height {
		return c.svg, nil
	}
	if len(s.hist.log.Steps) == 0 {
		return nil, nil
	}
	fig, err := runplot.New(s.hist.thinned(maxPoints), chartTitle(s.src.StatusProto().GetJob(), s.hist))
	if err != nil {
		return nil, err
	}
	fig.Changes = s.hist.log.Generations() // of every step, not only the ones drawn
	var b bytes.Buffer
	if err := fig.Render(&b, runplot.SVG, width, height); err != nil {
		return nil, err
	}
	c.version, c.w, c.h, c.svg = s.hist.version, width, height, b.Bytes()
	return c.svg, nil
}

// chartTitle names what the chart shows up to: the steps in the history,
// the newest loss and the newest evaluation.
func chartTitle(job string, h *history) string {
	steps := h.log.Steps
	last := steps[len(steps)-1]
	t := fmt.Sprintf("%s: %d steps, loss %.4f", job, last.Step+1, last.Loss)
	for i := len(steps) - 1; i >= 0; i-- {
		if v := steps[i].ValLoss; v != nil {
			t += fmt.Sprintf(", val %.4f after %d steps", *v, steps[i].Step+1)
			break
		}
	}
	return t
}

func sizeParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 200 || n > 4000 {
		return 0, fmt.Errorf("%s=%q: want pixels from 200 to 4000", name, v)
	}
	return n, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
