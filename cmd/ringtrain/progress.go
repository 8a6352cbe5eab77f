package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	pb "github.com/ringtrain/ringtrain/proto"
)

// How progress is shown: on a terminal a live line rewritten in place
// (bars for prepare and tokenizer training), with evaluations and events
// printed on lines of their own above it so that the history stays on
// screen; elsewhere (a log file, a pipe, compose) plain lines, a few
// seconds apart or every --log-every steps, and never a \r.

// plainEvery is how often a plain progress line is printed when the
// output is not a terminal.
const plainEvery = 5 * time.Second

const logEveryHelp = "when the output is not a terminal, print a progress line every N steps (0: every 5s)"

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// liveLine rewrites one line on a terminal; elsewhere it prints a line per
// show.
type liveLine struct {
	w    io.Writer
	tty  bool
	last string
}

func newLiveLine(w io.Writer) *liveLine { return &liveLine{w: w, tty: isTerminal(w)} }

func (l *liveLine) show(s string) {
	if s == l.last {
		return
	}
	l.last = s
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	fmt.Fprintf(l.w, "\r\033[K%s", s)
}

// println prints s on a line of its own, above the live line.
func (l *liveLine) println(s string) {
	if !l.tty || l.last == "" {
		fmt.Fprintln(l.w, s)
		return
	}
	fmt.Fprintf(l.w, "\r\033[K%s\n%s", s, l.last)
}

// done ends the live line.
func (l *liveLine) done() {
	if l.tty && l.last != "" {
		fmt.Fprintln(l.w)
	}
}

// jobProgress shows a job's status updates (local, watch): the summary
// line, and a line for each new evaluation and event.
type jobProgress struct {
	live     *liveLine
	every    time.Duration // not a terminal: a summary line at most this often …
	logEvery int64         // … or, if > 0, when the step crosses a multiple of it
	shown    *pb.JobStatusResponse
	shownAt  time.Time
	latest   string          // newest summary line, shown or not
	events   map[string]bool // events printed, of the newest status
	valStep  int64           // newest evaluation printed; -1 none
}

func newJobProgress(w io.Writer, logEvery int) *jobProgress {
	return &jobProgress{live: newLiveLine(w), every: plainEvery, logEvery: int64(logEvery), valStep: -1}
}

// update shows st.
func (p *jobProgress) update(st *pb.JobStatusResponse, now time.Time) {
	seen := map[string]bool{}
	for _, e := range st.GetEvents() {
		k := fmt.Sprint(e.GetTimeUnixMs(), e.GetKind(), e.GetStep(), e.GetWorker(), e.GetDetail())
		seen[k] = true
		if !p.events[k] {
			p.live.println(eventLine(e))
		}
	}
	p.events = seen
	if st.GetHasValLoss() && st.GetValStep() != p.valStep {
		p.valStep = st.GetValStep()
		p.live.println(fmt.Sprintf("eval    after %d steps  val loss %.4f", st.GetValStep(), st.GetValLoss()))
	}
	p.latest = progressLine(st)
	if p.due(st, now) {
		p.live.show(p.latest)
		p.shown, p.shownAt = st, now
	}
}

// due says whether a plain output gets a summary line for st now.
func (p *jobProgress) due(st *pb.JobStatusResponse, now time.Time) bool {
	prev := p.shown
	switch {
	case p.live.tty || prev == nil || st.GetPhase() != prev.GetPhase():
		return true
	case p.logEvery > 0:
		return st.GetStep()/p.logEvery != prev.GetStep()/p.logEvery
	}
	return now.Sub(p.shownAt) >= p.every && st.GetStep() != prev.GetStep()
}

// done shows the newest summary (if it was not) and ends the live line.
func (p *jobProgress) done() {
	if p.latest != "" {
		p.live.show(p.latest)
	}
	p.live.done()
}

// eventLine is one event as progress shows it.
func eventLine(e *pb.JobEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-17s step %d", time.UnixMilli(e.GetTimeUnixMs()).Format("15:04:05"), e.GetKind(), e.GetStep())
	if e.GetWorker() != "" {
		fmt.Fprintf(&b, "  %s", e.GetWorker())
	}
	if e.GetSeconds() > 0 {
		fmt.Fprintf(&b, "  in %s", fmtDuration(e.GetSeconds()))
	}
	if e.GetDetail() != "" {
		fmt.Fprintf(&b, ": %s", e.GetDetail())
	}
	return b.String()
}

// stage is how a progress bar shows one stage of a long command.
type stage struct {
	label string
	bytes bool // done and total are bytes
}

// stageBars shows the Progress(stage, done, total) callbacks of the
// tokenizer and dataprep packages on w: on a terminal one bar per stage,
// replaced when the stage changes; elsewhere a plain line per stage and
// every few seconds. Call finish at the end to clear the last bar.
func stageBars(w io.Writer, stages map[string]stage) (update func(stage string, done, total int64), finish func()) {
	if !isTerminal(w) {
		return stageLines(w, stages, plainEvery)
	}
	var bar *progressbar.ProgressBar
	current := ""
	finish = func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
	update = func(s string, done, total int64) {
		if bar == nil || s != current {
			finish()
			current = s
			st := stages[s]
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(st.label),
				progressbar.OptionShowBytes(st.bytes),
				progressbar.OptionShowCount(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set64(done)
	}
	return update, finish
}

// stageLines is stageBars for a log: "label: done/total (pct%)" when a
// stage starts, at most every `every` while it runs, and when it ends.
func stageLines(w io.Writer, stages map[string]stage, every time.Duration) (update func(stage string, done, total int64), finish func()) {
	type point struct {
		stage       string
		done, total int64
	}
	var cur, printed point
	var at time.Time
	line := func(p point) {
		st := stages[p.stage]
		amount := func(n int64) string {
			if st.bytes {
				return fmt.Sprintf("%.1f MB", float64(n)/1e6)
			}
			return fmt.Sprint(n)
		}
		pct := ""
		if p.total > 0 {
			pct = fmt.Sprintf(" (%.0f%%)", 100*float64(p.done)/float64(p.total))
		}
		fmt.Fprintf(w, "%s: %s/%s%s\n", st.label, amount(p.done), amount(p.total), pct)
		printed, at = p, time.Now()
	}
	finish = func() {
		if cur.stage != "" && cur != printed {
			line(cur)
		}
	}
	update = func(s string, done, total int64) {
		if s != cur.stage {
			finish()
		}
		first := s != cur.stage
		cur = point{s, done, total}
		if first || time.Since(at) >= every || (done == total && cur != printed) {
			line(cur)
		}
	}
	return update, finish
}

// counter shows the progress of n things (a benchmark's steps, the
// sequences of an evaluation) as stageBars does: add(k) after k more,
// finish at the end.
func counter(w io.Writer, label string, n int) (add func(k int), finish func()) {
	update, finish := stageBars(w, map[string]stage{label: {label: label}})
	done := int64(0)
	return func(k int) { done += int64(k); update(label, done, int64(n)) }, finish
}
