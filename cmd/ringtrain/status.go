package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/dashboard"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/tlsconf"
)

var statusFlags struct {
	target  jobTarget
	json    bool
	timeout time.Duration
}

var statusCmd = &cobra.Command{
	Use:   "status",
	Short: "Print a job's status once",
	Long: `Asks the job's coordinator for its status and prints it as a table, or with
--json as one JSON object with the fields job, phase, step, max_steps, loss,
val_loss and val_step (once an evaluation ran), lr, grad_norm, tokens_per_s,
tokens, eta_s, generation, world_size, last_checkpoint_step, run_dir, run,
coordinator, error, time_unix_ms, workers (name, rank, address, state, step,
step_time_s, compute_s, allreduce_wait_s, optimizer_s, tokens_per_s,
last_heartbeat_unix_ms, detail) and events (time_unix_ms, kind, step,
generation, worker, seconds, detail). The dashboard serves the same object
at /api/status.

The coordinator is --coordinator, or with --etcd the one etcd names under
--prefix (after a failover, the new one). Once the job is over and its
coordinator gone, --etcd finds the final state the coordinator left there
and prints it (phase, step, loss, val loss, run dir; no workers).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := &statusFlags
		if err := f.target.check(cmd.Flags()); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
		defer cancel()
		st, final, err := f.target.status(ctx)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if f.json {
			b, err := dashboard.StatusJSON(st)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, string(b))
			return err
		}
		if final {
			fmt.Fprintln(out, finalLine(st))
			fmt.Fprintln(out)
		}
		return printStatus(out, st)
	},
}

func init() {
	f := statusCmd.Flags()
	statusFlags.target.addFlags(f)
	f.BoolVar(&statusFlags.json, "json", false, "print one JSON object")
	f.DurationVar(&statusFlags.timeout, "timeout", 10*time.Second, "give up after this long")
	rootCmd.AddCommand(statusCmd)
}

// status asks the coordinator (found through etcd with --etcd) for the
// job's status; final is set when it comes from the result a finished
// job left in etcd.
func (t *jobTarget) status(ctx context.Context) (st *pb.JobStatusResponse, final bool, err error) {
	tn, err := tlsconf.Load(t.tls)
	if err != nil {
		return nil, false, err
	}
	addr := t.coordinator
	if t.etcd != "" {
		cli, err := newEtcdClient(t.etcd, tn)
		if err != nil {
			return nil, false, err
		}
		defer cli.Close()
		fd, err := t.lookup(ctx, cli)
		if err != nil {
			return nil, false, err
		}
		if fd.result != nil {
			return resultStatus(fd.result), true, nil
		}
		addr = fd.addr
	}
	cli, closeFn, err := dialCoordinator(addr, tn)
	if err != nil {
		return nil, false, err
	}
	defer closeFn()
	st, err = cli.JobStatus(ctx, &pb.JobStatusRequest{})
	if err != nil {
		return nil, false, unreachable(addr, err, t.etcd != "")
	}
	return st, false, nil
}

func dialCoordinator(addr string, tn *tlsconf.Node) (pb.CoordinatorClient, func(), error) {
	cc, err := grpc.NewClient(addr, tn.DialOption())
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator %s: %w", addr, err)
	}
	return pb.NewCoordinatorClient(cc), func() { cc.Close() }, nil
}

func printStatus(w io.Writer, st *pb.JobStatusResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s\n", st.GetJob())
	fmt.Fprintf(tw, "phase\t%s\n", st.GetPhase())
	fmt.Fprintf(tw, "step\t%d / %d\n", st.GetStep(), st.GetMaxSteps())
	if st.GetStep() > 0 {
		fmt.Fprintf(tw, "loss\t%.4f\n", st.GetLoss())
	}
	if st.GetHasValLoss() {
		fmt.Fprintf(tw, "val loss\t%.4f (after %d steps)\n", st.GetValLoss(), st.GetValStep())
	}
	if st.GetTokensPerS() > 0 {
		fmt.Fprintf(tw, "tokens/s\t%.0f\n", st.GetTokensPerS())
	}
	if st.GetEtaS() > 0 {
		fmt.Fprintf(tw, "eta\t%s\n", fmtDuration(st.GetEtaS()))
	}
	if st.GetGeneration() > 0 {
		fmt.Fprintf(tw, "generation\t%d (world %d)\n", st.GetGeneration(), st.GetWorldSize())
	}
	if st.GetLastCheckpointStep() >= 0 {
		fmt.Fprintf(tw, "checkpoint\tstep %d\n", st.GetLastCheckpointStep())
	} else {
		fmt.Fprintf(tw, "checkpoint\tnone\n")
	}
	fmt.Fprintf(tw, "run dir\t%s\n", st.GetRunDir())
	if st.GetError() != "" {
		fmt.Fprintf(tw, "note\t%s\n", st.GetError())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.GetWorkers()) > 0 {
		if err := printWorkers(w, st); err != nil {
			return err
		}
	}
	events := st.GetEvents()
	if len(events) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nRECENT EVENTS")
	for _, e := range events[max(0, len(events)-10):] {
		fmt.Fprintln(w, eventLine(e))
	}
	return nil
}

func printWorkers(w io.Writer, st *pb.JobStatusResponse) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRANK\tADDRESS\tSTATE\tSTEP\tSTEP TIME\tCOMPUTE/WAIT/OPT\tTOKENS/S\tHEARTBEAT")
	now := time.UnixMilli(st.GetTimeUnixMs())
	for _, wk := range st.GetWorkers() {
		rank := fmt.Sprint(wk.GetRank())
		if wk.GetRank() < 0 {
			rank = "-"
		}
		hb := "-"
		if ms := wk.GetLastHeartbeatUnixMs(); ms > 0 {
			hb = fmtDuration(now.Sub(time.UnixMilli(ms)).Seconds()) + " ago"
		}
		state := wk.GetState()
		if d := wk.GetDetail(); d != "" {
			state += " (" + d + ")"
		}
		stepTime, split, tps := "-", "-", "-"
		if wk.GetStepTimeS() > 0 {
			stepTime = fmtDuration(wk.GetStepTimeS())
			split = fmt.Sprintf("%s/%s/%s", fmtDuration(wk.GetComputeS()), fmtDuration(wk.GetAllreduceWaitS()), fmtDuration(wk.GetOptimizerS()))
			tps = fmt.Sprintf("%.0f", wk.GetTokensPerS())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", wk.GetName(), rank, wk.GetAddress(), state,
			wk.GetStep(), stepTime, split, tps, hb)
	}
	return tw.Flush()
}

// fmtDuration prints seconds compactly: 850ms, 12.3s, 4m05s, 2h03m.
func fmtDuration(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// progressLine is the one-line summary of watch and local.
func progressLine(st *pb.JobStatusResponse) string {
	var b strings.Builder
	if st.GetPhase() == "done" {
		fmt.Fprintf(&b, "job %s done at step %d, loss %.4f", st.GetJob(), st.GetStep(), st.GetLoss())
		if st.GetHasValLoss() {
			fmt.Fprintf(&b, ", val %.4f", st.GetValLoss())
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s step %d/%d", st.GetPhase(), st.GetStep(), st.GetMaxSteps())
	if st.GetStep() > 0 {
		fmt.Fprintf(&b, " loss %.4f", st.GetLoss())
	}
	if st.GetHasValLoss() {
		fmt.Fprintf(&b, " val %.4f", st.GetValLoss())
	}
	if st.GetTokensPerS() > 0 {
		fmt.Fprintf(&b, " %.0f tok/s", st.GetTokensPerS())
	}
	if st.GetEtaS() > 0 {
		fmt.Fprintf(&b, " ETA %s", fmtDuration(st.GetEtaS()))
	}
	fmt.Fprintf(&b, " W=%d", st.GetWorldSize())
	if st.GetError() != "" {
		fmt.Fprintf(&b, " (%s)", st.GetError())
	}
	return b.String()
}
