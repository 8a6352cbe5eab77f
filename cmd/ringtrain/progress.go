package main

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// stage is how a progress bar shows one stage of a long command.
type stage struct {
	label string
	bytes bool // done and total are bytes
}

// stageBars shows the Progress(stage, done, total) callbacks of the
// tokenizer and dataprep packages on w: one bar per stage, replaced when
// the stage changes. Call finish at the end to clear the last bar.
func stageBars(w io.Writer, stages map[string]stage) (update func(stage string, done, total int64), finish func()) {
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
