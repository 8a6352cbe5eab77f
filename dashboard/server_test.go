package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/ringtrain/ringtrain/proto"
)

type fakeSource struct {
	st  *pb.JobStatusResponse
	dir string
}

func (f *fakeSource) StatusProto() *pb.JobStatusResponse { return f.st }
func (f *fakeSource) RunDir() string                     { return f.dir }

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Result().Header, string(b)
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "")); err != nil {
		t.Fatal(err)
	}
}

func stepLine(step int, loss float64, val string) string {
	if val != "" {
		val = `,"val_loss":` + val
	}
	return fmt.Sprintf(`{"step":%d,"loss":%g,"lr":0.001,"grad_norm":1,"tokens":384,"tokens_per_s":5000,"world_size":2,"time":"2026-01-02T03:04:05Z"%s}`+"\n", step, loss, val)
}

func TestDashboardServer(t *testing.T) {
	dir := t.TempDir()
	src := &fakeSource{dir: dir, st: &pb.JobStatusResponse{Job: "tiny", Phase: "running", Step: 3, MaxSteps: 10, Loss: 3.25,
		TokensPerS: 5000, Generation: 1, WorldSize: 2, LastCheckpointStep: -1, TimeUnixMs: 10_000,
		Workers: []*pb.WorkerStatus{{Name: "w0", Rank: 0, State: "training", Step: 3, StepTimeS: 0.02, ComputeS: 0.015,
			AllreduceWaitS: 0.003, OptimizerS: 0.002, LastHeartbeatUnixMs: 9_000}},
		Events: []*pb.JobEvent{{TimeUnixMs: 9_500, Kind: "joined", Worker: "w0"}}}}
	s := New(src)

	code, hdr, body := get(t, s, "/")
	if code != 200 || !strings.Contains(body, `src="assets/app.js"`) || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s\n%.200s", code, hdr.Get("Content-Type"), body)
	}
	if code, _, _ := get(t, s, "/nope"); code != 404 {
		t.Errorf("GET /nope: %d, want 404", code)
	}
	// No internet: nothing the page loads comes from elsewhere.
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		if strings.Contains(string(b), "://") {
			t.Errorf("%s refers to another site", p)
		}
		if p == "assets/index.html" {
			return nil // served at /
		}
		if code, _, served := get(t, s, "/"+p); code != 200 || served != string(b) {
			t.Errorf("GET /%s: %d", p, code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	code, hdr, body = get(t, s, "/api/status")
	var st map[string]any
	if code != 200 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("GET /api/status: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	if _, ok := st["val_loss"]; ok {
		t.Errorf("val_loss before an evaluation: %v", st["val_loss"])
	}
	if w := st["workers"].([]any)[0].(map[string]any); w["allreduce_wait_s"] != 0.003 || w["compute_s"] != 0.015 {
		t.Errorf("worker split %v", w)
	}
	if e := st["events"].([]any); len(e) != 1 || e[0].(map[string]any)["kind"] != "joined" {
		t.Errorf("events %v", e)
	}

	// No history yet, then a half-written first line: nothing to draw.
	if code, _, _ := get(t, s, "/chart.svg"); code != http.StatusNoContent {
		t.Errorf("chart before any step: %d, want 204", code)
	}
	metrics := filepath.Join(dir, MetricsFile)
	appendLines(t, metrics, `{"step":0,"loss":4`)
	if code, _, _ := get(t, s, "/chart.svg"); code != http.StatusNoContent {
		t.Errorf("chart of a half-written line: %d, want 204", code)
	}
	appendLines(t, metrics, ".5"+stepLine(0, 4.5, "")[len(`{"step":0,"loss":4.5`):], stepLine(1, 4.0, "4.25"),
		`{"event":"joined","step":2,"time":"2026-01-02T03:04:05Z","worker":"w1"}`+"\n", stepLine(2, 3.75, ""))
	code, hdr, body = get(t, s, "/chart.svg?width=600&height=400")
	if code != 200 || hdr.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("chart: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	for _, want := range []string{"<svg", "tiny: 3 steps, loss 3.7500, val 4.2500 after 2 steps", ">learning rate<", ">tokens/s<"} {
		if !strings.Contains(body, want) {
			t.Errorf("chart has no %q", want)
		}
	}
	// A step written again replaces its line; a new size is drawn anew.
	appendLines(t, metrics, stepLine(2, 3.5, ""))
	if _, _, body := get(t, s, "/chart.svg?width=700&height=400"); !strings.Contains(body, "tiny: 3 steps, loss 3.5000") {
		t.Errorf("chart after step 2 was written again: %.300s", body)
	}
	if code, _, _ := get(t, s, "/chart.svg?width=5"); code != 400 {
		t.Errorf("chart of width 5: %d, want 400", code)
	}
}

func TestDashboardHistoryThinned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	var lines []string
	for i := range 1000 {
		val := ""
		if i%97 == 0 {
			val = "3"
		}
		lines = append(lines, stepLine(i, 4, val))
	}
	appendLines(t, path, lines...)
	h := newHistory(path)
	if err := h.refresh(); err != nil {
		t.Fatal(err)
	}
	l := h.thinned(100)
	evals := 0
	for _, s := range l.Steps {
		if s.ValLoss != nil {
			evals++
		}
	}
	if n := len(l.Steps); n < 100 || n > 120 || evals != 11 || l.Steps[n-1].Step != 999 {
		t.Errorf("thinned to %d steps with %d evals, last %d; want about 100, all 11 evals, the last step", n, evals, l.Steps[len(l.Steps)-1].Step)
	}
	if h.thinned(2000).Steps[500].Step != 500 {
		t.Error("a short history is not thinned")
	}
}
