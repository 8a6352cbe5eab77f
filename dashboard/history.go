package dashboard

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ringtrain/ringtrain/runmetrics"
)

// history follows an append-only metrics.jsonl: each refresh parses only
// the complete lines added since the last one. Not safe for concurrent use.
type history struct {
	path  string
	off   int64 // bytes parsed
	log   runmetrics.Log
	index map[int]int // step → index in log.Steps
	// version counts the refreshes that found new lines.
	version int
}

func newHistory(path string) *history {
	return &history{path: path, index: map[int]int{}}
}

// refresh reads the lines appended since the last call. A file that
// shrank (another run in its place) is read again from its start; a
// missing one is an empty history.
func (h *history) refresh() error {
	f, err := os.Open(h.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < h.off {
		*h = *newHistory(h.path)
		h.version++
	}
	if fi.Size() == h.off {
		return nil
	}
	buf := make([]byte, fi.Size()-h.off)
	n, err := f.ReadAt(buf, h.off)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read %s: %w", h.path, err)
	}
	buf = buf[:n]
	end := bytes.LastIndexByte(buf, '\n') + 1 // complete lines only: the writer may be in the middle of one
	if end == 0 {
		return nil
	}
	l, err := runmetrics.Parse(bytes.NewReader(buf[:end]), fmt.Sprintf("%s (from byte %d)", h.path, h.off))
	if err != nil {
		return err
	}
	h.off += int64(end)
	h.version++
	h.log.Events = append(h.log.Events, l.Events...)
	sorted := true
	for _, s := range l.Steps {
		if i, dup := h.index[s.Step]; dup { // a step written twice keeps its last line
			h.log.Steps[i] = s
			continue
		}
		if n := len(h.log.Steps); n > 0 && h.log.Steps[n-1].Step > s.Step {
			sorted = false
		}
		h.index[s.Step] = len(h.log.Steps)
		h.log.Steps = append(h.log.Steps, s)
	}
	if !sorted {
		sort.SliceStable(h.log.Steps, func(i, j int) bool { return h.log.Steps[i].Step < h.log.Steps[j].Step })
		for i, s := range h.log.Steps {
			h.index[s.Step] = i
		}
	}
	return nil
}

// thinned returns the history with at most about max step lines for
// drawing: every k-th step, plus every evaluation and the last step. The
// events are kept, and so are the generation changes (computed on the
// whole history by the caller).
func (h *history) thinned(max int) *runmetrics.Log {
	steps := h.log.Steps
	if len(steps) <= max {
		return &runmetrics.Log{Steps: steps, Events: h.log.Events}
	}
	k := (len(steps) + max - 1) / max
	out := make([]runmetrics.Step, 0, max+len(steps)/100)
	for i, s := range steps {
		if i%k == 0 || s.ValLoss != nil || i == len(steps)-1 {
			out = append(out, s)
		}
	}
	return &runmetrics.Log{Steps: out, Events: h.log.Events}
}
