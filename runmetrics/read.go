package runmetrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Step is the line of one optimizer step. ValLoss is set on evaluation steps.
type Step struct {
	Step       int       `json:"step"`
	Loss       float64   `json:"loss"`
	LR         float64   `json:"lr"`
	GradNorm   float64   `json:"grad_norm"`
	Tokens     int64     `json:"tokens"`
	TokensPerS float64   `json:"tokens_per_s"` // 0: not measured
	WorldSize  int       `json:"world_size"`
	Time       time.Time `json:"time"`
	ValLoss    *float64  `json:"val_loss,omitempty"`
}

// Event kinds.
const (
	EventGeneration = "generation"
	EventJoined     = "joined"
	EventLost       = "lost"
	EventHealed     = "healed"
	EventCheckpoint = "checkpoint"
	EventStalled    = "stalled"
	EventStopped    = "stopped"
)

// Event is a cluster event line. Only Event, Step and Time are always
// present.
type Event struct {
	Event      string    `json:"event"`
	Step       int       `json:"step"`
	Time       time.Time `json:"time"`
	Generation int64     `json:"generation,omitempty"`
	WorldSize  int       `json:"world_size,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	Seconds    float64   `json:"seconds,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	// Redone counts the completed steps trained again after a change
	// ("recovered" events).
	Redone int `json:"redone,omitempty"`
}

// Log is the content of a metrics.jsonl.
type Log struct {
	Steps  []Step  // sorted by step; a step written twice keeps its last line
	Events []Event // in file order
}

// ReadFile reads and parses the metrics file at path.
func ReadFile(path string) (*Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse parses metrics lines from r; name names r in errors.
func Parse(r io.Reader, name string) (*Log, error) {
	br := bufio.NewReader(r)
	var l Log
	steps := map[int]int{} // step -> index in l.Steps
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		complete := err == nil
		if len(bytes.TrimSpace(line)) > 0 {
			s, e, perr := parseLine(line)
			switch {
			case perr != nil && !complete:
				// The writer is in the middle of this line.
			case perr != nil:
				return nil, fmt.Errorf("%s:%d: %w", name, n, perr)
			case e != nil:
				l.Events = append(l.Events, *e)
			case s != nil:
				if i, dup := steps[s.Step]; dup {
					l.Steps[i] = *s
				} else {
					steps[s.Step] = len(l.Steps)
					l.Steps = append(l.Steps, *s)
				}
			}
		}
		if !complete {
			break
		}
	}
	sort.SliceStable(l.Steps, func(i, j int) bool { return l.Steps[i].Step < l.Steps[j].Step })
	return &l, nil
}

// parseLine returns the step or the event of one line.
func parseLine(b []byte) (*Step, *Event, error) {
	var probe struct {
		Event *string          `json:"event"`
		Step  *int             `json:"step"`
		Loss  *json.RawMessage `json:"loss"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, nil, fmt.Errorf("not a JSON metrics line: %w", err)
	}
	if probe.Step == nil {
		return nil, nil, errors.New(`no "step"`)
	}
	switch {
	case probe.Event != nil:
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, nil, fmt.Errorf("event line: %w", err)
		}
		if e.Event == "" {
			return nil, nil, errors.New(`empty "event"`)
		}
		return nil, &e, nil
	case probe.Loss != nil:
		var s Step
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, nil, fmt.Errorf("step line: %w", err)
		}
		return &s, nil, nil
	}
	return nil, nil, errors.New(`neither "loss" (a step) nor "event"`)
}

// Change is a step where the job's membership changed.
type Change struct {
	Step       int
	Generation int64 // 0 if not known (derived from world_size)
	WorldSize  int
}

// Generations returns where the membership changed, by step: at each
// "generation" event, and where world_size differs from the step before
// (the first step not counted). One Change per step, the event's when both.
func (l *Log) Generations() []Change {
	at := map[int]Change{}
	for i := 1; i < len(l.Steps); i++ {
		if s := l.Steps[i]; s.WorldSize != l.Steps[i-1].WorldSize {
			at[s.Step] = Change{Step: s.Step, WorldSize: s.WorldSize}
		}
	}
	for _, e := range l.Events {
		if e.Event == EventGeneration {
			c := Change{Step: e.Step, Generation: e.Generation, WorldSize: e.WorldSize}
			if c.WorldSize == 0 {
				c.WorldSize = at[e.Step].WorldSize
			}
			at[e.Step] = c
		}
	}
	out := make([]Change, 0, len(at))
	for _, c := range at {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out
}
