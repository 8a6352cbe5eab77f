package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/tlsconf"
)

var watchFlags struct {
	coordinator string
	interval    time.Duration
	tls         tlsconf.Files
}

var watchCmd = &cobra.Command{
	Use:   "watch",
	Short: "Follow a job's progress live",
	Long: `Streams the job's status from the coordinator at --coordinator and shows
step/max, loss, tokens/s and ETA on one live line (one line per update when
stdout is not a terminal). Exits 0 when the job is done, 1 if it failed.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		tn, err := tlsconf.Load(watchFlags.tls)
		if err != nil {
			return err
		}
		cli, closeFn, err := dialCoordinator(watchFlags.coordinator, tn)
		if err != nil {
			return err
		}
		defer closeFn()
		stream, err := cli.WatchJob(ctx, &pb.WatchJobRequest{MinIntervalMs: watchFlags.interval.Milliseconds()})
		if err != nil {
			return fmt.Errorf("watch coordinator %s: %w", watchFlags.coordinator, err)
		}
		out := cmd.OutOrStdout()
		live := newLiveLine(out)
		var last *pb.JobStatusResponse
		for {
			st, err := stream.Recv()
			if err != nil {
				live.done()
				if errors.Is(err, io.EOF) && last != nil {
					return jobOutcome(last)
				}
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch coordinator %s: %w", watchFlags.coordinator, err)
			}
			last = st
			live.show(progressLine(st))
		}
	},
}

func init() {
	f := watchCmd.Flags()
	f.StringVar(&watchFlags.coordinator, "coordinator", "127.0.0.1:7070", "coordinator gRPC address")
	f.DurationVar(&watchFlags.interval, "interval", 500*time.Millisecond, "at most one update per interval")
	tlsconf.AddFlags(f, &watchFlags.tls)
	rootCmd.AddCommand(watchCmd)
}

// jobOutcome turns a final status into the exit status.
func jobOutcome(st *pb.JobStatusResponse) error {
	switch st.GetPhase() {
	case "done":
		return nil
	case "failed":
		return fmt.Errorf("job %s failed: %s", st.GetJob(), st.GetError())
	}
	return fmt.Errorf("job %s: coordinator stopped in phase %s at step %d", st.GetJob(), st.GetPhase(), st.GetStep())
}

// liveLine rewrites one line on a terminal; elsewhere it prints a line per
// update.
type liveLine struct {
	w    io.Writer
	tty  bool
	last string
	wide int
}

func newLiveLine(w io.Writer) *liveLine {
	l := &liveLine{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		l.tty = true
	}
	return l
}

func (l *liveLine) show(s string) {
	if s == l.last {
		return
	}
	l.last = s
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	pad := l.wide - len(s)
	l.wide = len(s)
	if pad < 0 {
		pad = 0
	}
	fmt.Fprintf(l.w, "\r%s%*s", s, pad, "")
}

func (l *liveLine) done() {
	if l.tty && l.last != "" {
		fmt.Fprintln(l.w)
	}
}
