package worker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MetricsLine is one line of RUN/metrics.jsonl (spec section 6). Tokens are
// the tokens of this step, all workers together.
type MetricsLine struct {
	Step       int      `json:"step"`
	Loss       float64  `json:"loss"`
	LR         float64  `json:"lr"`
	GradNorm   float64  `json:"grad_norm"`
	Tokens     int64    `json:"tokens"`
	TokensPerS float64  `json:"tokens_per_s"`
	WorldSize  int      `json:"world_size"`
	Time       string   `json:"time"`
	ValLoss    *float64 `json:"val_loss,omitempty"`
}

// MetricsWriter appends to RUN/metrics.jsonl; only rank 0 writes.
type MetricsWriter struct {
	f *os.File
	w *bufio.Writer
}

// OpenMetrics opens RUN/metrics.jsonl for a generation that starts after
// start steps: lines of steps ≥ start (from a run that went past its last
// checkpoint) are dropped, so the file holds each step once.
func OpenMetrics(runDir string, start int) (*MetricsWriter, error) {
	path := filepath.Join(runDir, "metrics.jsonl")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var keep bytes.Buffer
	for _, line := range bytes.Split(old, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(line, &l) != nil || l.Step == nil || *l.Step >= start {
			continue
		}
		keep.Write(line)
		keep.WriteByte('\n')
	}
	if keep.Len() != len(old) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, keep.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &MetricsWriter{f: f, w: bufio.NewWriter(f)}, nil
}

// Write appends the line of step s (counted from 0) and flushes it.
func (m *MetricsWriter) Write(s int, r StepResult, world int, hasVal bool, val float64) error {
	l := MetricsLine{Step: s, Loss: r.Loss, LR: r.LR, GradNorm: r.GradNorm, Tokens: r.Tokens,
		WorldSize: world, Time: time.Now().UTC().Format(time.RFC3339)}
	if r.Duration > 0 {
		l.TokensPerS = float64(r.Tokens) / r.Duration.Seconds()
	}
	if hasVal {
		l.ValLoss = &val
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	b = append(b, '\n')
	if _, err := m.w.Write(b); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Sync makes the lines written so far durable.
func (m *MetricsWriter) Sync() error {
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Close closes the file.
func (m *MetricsWriter) Close() error {
	if err := m.w.Flush(); err != nil {
		m.f.Close()
		return err
	}
	return m.f.Close()
}
