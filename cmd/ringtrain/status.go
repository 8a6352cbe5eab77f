package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/tlsconf"
)

var statusFlags struct {
	coordinator string
	json        bool
	timeout     time.Duration
	tls         tlsconf.Files
}

var statusCmd = &cobra.Command{
	Use:   "status",
	Short: "Print a job's status once",
	Long: `Asks the coordinator at --coordinator for its job's status and prints it as a
table, or with --json as one JSON object with the fields phase, step,
max_steps, loss, val_loss, tokens_per_s, eta_s, generation, world_size,
last_checkpoint_step, error and workers (name, rank, address, state, step,
step_time_s, tokens_per_s, last_heartbeat_unix_ms).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), statusFlags.timeout)
		defer cancel()
		tn, err := tlsconf.Load(statusFlags.tls)
		if err != nil {
			return err
		}
		cli, closeFn, err := dialCoordinator(statusFlags.coordinator, tn)
		if err != nil {
			return err
		}
		defer closeFn()
		st, err := cli.JobStatus(ctx, &pb.JobStatusRequest{})
		if err != nil {
			return fmt.Errorf("status from coordinator %s: %w", statusFlags.coordinator, err)
		}
		out := cmd.OutOrStdout()
		if statusFlags.json {
			b, err := statusJSON(st)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, string(b))
			return err
		}
		return printStatus(out, st)
	},
}

func init() {
	f := statusCmd.Flags()
	f.StringVar(&statusFlags.coordinator, "coordinator", "127.0.0.1:7070", "coordinator gRPC address")
	f.BoolVar(&statusFlags.json, "json", false, "print one JSON object")
	f.DurationVar(&statusFlags.timeout, "timeout", 10*time.Second, "give up after this long")
	tlsconf.AddFlags(f, &statusFlags.tls)
	rootCmd.AddCommand(statusCmd)
}

func dialCoordinator(addr string, tn *tlsconf.Node) (pb.CoordinatorClient, func(), error) {
	cc, err := grpc.NewClient(addr, tn.DialOption())
	if err != nil {
		return nil, nil, fmt.Errorf("--coordinator %s: %w", addr, err)
	}
	return pb.NewCoordinatorClient(cc), func() { cc.Close() }, nil
}

// statusJSON renders the status as one JSON object with snake_case keys
// and numbers as JSON numbers.
func statusJSON(st *pb.JobStatusResponse) ([]byte, error) {
	type workerJSON struct {
		Name                string  `json:"name"`
		Rank                int32   `json:"rank"`
		Address             string  `json:"address"`
		State               string  `json:"state"`
		Step                int64   `json:"step"`
		StepTimeS           float64 `json:"step_time_s"`
		TokensPerS          float64 `json:"tokens_per_s"`
		LastHeartbeatUnixMs int64   `json:"last_heartbeat_unix_ms"`
		Detail              string  `json:"detail,omitempty"`
	}
	type eventJSON struct {
		TimeUnixMs int64   `json:"time_unix_ms"`
		Kind       string  `json:"kind"`
		Step       int64   `json:"step"`
		Worker     string  `json:"worker,omitempty"`
		Seconds    float64 `json:"seconds,omitempty"`
		Detail     string  `json:"detail,omitempty"`
	}
	out := struct {
		Job                string       `json:"job"`
		Phase              string       `json:"phase"`
		Step               int64        `json:"step"`
		MaxSteps           int64        `json:"max_steps"`
		Loss               float64      `json:"loss"`
		ValLoss            float64      `json:"val_loss"`
		LR                 float64      `json:"lr"`
		GradNorm           float64      `json:"grad_norm"`
		TokensPerS         float64      `json:"tokens_per_s"`
		Tokens             int64        `json:"tokens"`
		EtaS               float64      `json:"eta_s"`
		Generation         int64        `json:"generation"`
		WorldSize          int32        `json:"world_size"`
		LastCheckpointStep int64        `json:"last_checkpoint_step"`
		RunDir             string       `json:"run_dir"`
		Error              string       `json:"error"`
		TimeUnixMs         int64        `json:"time_unix_ms"`
		Workers            []workerJSON `json:"workers"`
		Events             []eventJSON  `json:"events"`
	}{
		Job: st.GetJob(), Phase: st.GetPhase(), Step: st.GetStep(), MaxSteps: st.GetMaxSteps(), Loss: st.GetLoss(),
		ValLoss: st.GetValLoss(), LR: st.GetLr(), GradNorm: st.GetGradNorm(), TokensPerS: st.GetTokensPerS(),
		Tokens: st.GetTokens(), EtaS: st.GetEtaS(), Generation: st.GetGeneration(), WorldSize: st.GetWorldSize(),
		LastCheckpointStep: st.GetLastCheckpointStep(), RunDir: st.GetRunDir(), Error: st.GetError(),
		TimeUnixMs: st.GetTimeUnixMs(), Workers: []workerJSON{}, Events: []eventJSON{},
	}
	for _, w := range st.GetWorkers() {
		out.Workers = append(out.Workers, workerJSON{Name: w.GetName(), Rank: w.GetRank(), Address: w.GetAddress(),
			State: w.GetState(), Step: w.GetStep(), StepTimeS: w.GetStepTimeS(), TokensPerS: w.GetTokensPerS(),
			LastHeartbeatUnixMs: w.GetLastHeartbeatUnixMs(), Detail: w.GetDetail()})
	}
	for _, e := range st.GetEvents() {
		out.Events = append(out.Events, eventJSON{TimeUnixMs: e.GetTimeUnixMs(), Kind: e.GetKind(), Step: e.GetStep(),
			Worker: e.GetWorker(), Seconds: e.GetSeconds(), Detail: e.GetDetail()})
	}
	return json.Marshal(out)
}

func printStatus(w io.Writer, st *pb.JobStatusResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s\n", st.GetJob())
	fmt.Fprintf(tw, "phase\t%s\n", st.GetPhase())
	fmt.Fprintf(tw, "step\t%d / %d\n", st.GetStep(), st.GetMaxSteps())
	fmt.Fprintf(tw, "loss\t%.4f\n", st.GetLoss())
	if st.GetValLoss() != 0 {
		fmt.Fprintf(tw, "val loss\t%.4f\n", st.GetValLoss())
	}
	fmt.Fprintf(tw, "tokens/s\t%.0f\n", st.GetTokensPerS())
	if st.GetEtaS() > 0 {
		fmt.Fprintf(tw, "eta\t%s\n", fmtDuration(st.GetEtaS()))
	}
	fmt.Fprintf(tw, "generation\t%d (world %d)\n", st.GetGeneration(), st.GetWorldSize())
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
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRANK\tADDRESS\tSTATE\tSTEP\tSTEP TIME\tTOKENS/S\tHEARTBEAT")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.0f\t%s\n", wk.GetName(), rank, wk.GetAddress(), state,
			wk.GetStep(), fmtDuration(wk.GetStepTimeS()), wk.GetTokensPerS(), hb)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	events := st.GetEvents()
	if len(events) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nRECENT EVENTS")
	for _, e := range events[max(0, len(events)-10):] {
		fmt.Fprintf(w, "%s  %-10s step %-6d %s%s\n", time.UnixMilli(e.GetTimeUnixMs()).Format("15:04:05.000"), e.GetKind(), e.GetStep(),
			eventWho(e), e.GetDetail())
	}
	return nil
}

func eventWho(e *pb.JobEvent) string {
	var b strings.Builder
	if e.GetWorker() != "" {
		b.WriteString(e.GetWorker() + ": ")
	}
	if e.GetSeconds() > 0 {
		fmt.Fprintf(&b, "[%.2f s] ", e.GetSeconds())
	}
	return b.String()
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
	if st.GetValLoss() != 0 {
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
