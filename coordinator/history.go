package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringtrain/ringtrain/runmetrics"
)

// Line is one line of RUN/metrics.jsonl (see docs/checkpoints.md): a step
// or an event, in the format package runmetrics reads.
type Line struct {
	Step  *runmetrics.Step
	Event *runmetrics.Event
}

func eventLine(e Event) Line {
	return Line{Event: &runmetrics.Event{Event: e.Kind, Step: e.Step, Time: e.Time.UTC(), Generation: e.Generation,
		WorldSize: e.World, Worker: e.Worker, Seconds: e.Seconds, Detail: e.Detail, Redone: e.Redone}}
}

// MarshalJSON writes the step or the event.
func (l Line) MarshalJSON() ([]byte, error) {
	if l.Step != nil {
		s := *l.Step
		s.Time = s.Time.UTC()
		return json.Marshal(s)
	}
	return json.Marshal(l.Event)
}

// History appends lines to RUN/metrics.jsonl. The file is append-only: a
// run resumed from an older checkpoint adds lines, it never rewrites any.
type History struct {
	f *os.File
	w *bufio.Writer
}

// OpenHistory opens (creating) RUN/metrics.jsonl for appending.
func OpenHistory(runDir string) (*History, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(runDir, MetricsFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &History{f: f, w: bufio.NewWriter(f)}, nil
}

// MetricsFile is the name of the history in the run directory.
const MetricsFile = "metrics.jsonl"

// Append writes l and flushes it to the file.
func (h *History) Append(l Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	h.w.Write(b)
	h.w.WriteByte('\n')
	if err := h.w.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Sync makes the lines written so far durable.
func (h *History) Sync() error { return h.f.Sync() }

// Close closes the file.
func (h *History) Close() error {
	h.w.Flush()
	return h.f.Close()
}
