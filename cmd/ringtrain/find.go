package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/cluster"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/tlsconf"
)

// jobTarget is where status and watch find the job: a coordinator's
// address, or etcd, where PREFIX/coordinator names the current one and
// PREFIX/result holds the final state once the job is over.
type jobTarget struct {
	coordinator, etcd, prefix string
	tls                       tlsconf.Files
}

const defaultCoordinator = "127.0.0.1:7070"

func (t *jobTarget) addFlags(f *pflag.FlagSet) {
	f.StringVar(&t.coordinator, "coordinator", defaultCoordinator, "coordinator gRPC address")
	f.StringVar(&t.etcd, "etcd", "", "etcd endpoints (comma-separated): find the current coordinator, or the job's final state, there instead of --coordinator")
	f.StringVar(&t.prefix, "prefix", cluster.DefaultPrefix, "with --etcd: the etcd key prefix of the cluster")
	tlsconf.AddFlags(f, &t.tls)
}

// check refuses --coordinator together with --etcd.
func (t *jobTarget) check(f *pflag.FlagSet) error {
	if t.etcd != "" && f.Changed("coordinator") {
		return errors.New("--coordinator and --etcd: give one of them")
	}
	return nil
}

// found is what etcd says about the job: the coordinator's address, or
// (none leading) the final state of the job that ended.
type found struct {
	addr   string
	result *cluster.Result
}

// noCoordinator: etcd names no coordinator and holds no result.
type noCoordinator struct{ why string }

func (e noCoordinator) Error() string { return e.why }

// lookup asks etcd where the job is.
func (t *jobTarget) lookup(ctx context.Context, cli *clientv3.Client) (found, error) {
	k := cluster.Keys{Prefix: t.prefix}
	rec, err := cluster.ReadJSON[cluster.CoordinatorRecord](ctx, cli, k.Coordinator())
	if err != nil {
		return found{}, fmt.Errorf("--etcd %s: %w", t.etcd, err)
	}
	if rec != nil && rec.Address != "" {
		return found{addr: rec.Address}, nil
	}
	res, err := cluster.ReadJSON[cluster.Result](ctx, cli, k.Result())
	if err != nil {
		return found{}, fmt.Errorf("--etcd %s: %w", t.etcd, err)
	}
	if res != nil {
		return found{result: res}, nil
	}
	job, err := cluster.ReadJSON[cluster.JobRecord](ctx, cli, k.Job())
	if err != nil {
		return found{}, fmt.Errorf("--etcd %s: %w", t.etcd, err)
	}
	if job == nil || job.Job == nil {
		return found{}, noCoordinator{fmt.Sprintf("nothing under %s in etcd %s (no job was started there; another --prefix?)", t.prefix, t.etcd)}
	}
	return found{}, noCoordinator{fmt.Sprintf("no coordinator leads job %q (run %s) under %s: it stopped without finishing, or a standby has not taken over yet; start a coordinator on its run dir to resume",
		job.Job.Name, job.Run, t.prefix)}
}

// resultStatus is a job's final state in the status's form (no workers).
func resultStatus(r *cluster.Result) *pb.JobStatusResponse {
	st := &pb.JobStatusResponse{Job: r.Job, Phase: r.Phase, Step: r.Step, MaxSteps: r.MaxSteps, Loss: r.Loss,
		LastCheckpointStep: r.LastCheckpoint, RunDir: r.RunDir, Error: r.Note, TimeUnixMs: r.Time.UnixMilli(),
		Run: r.Run, Coordinator: r.Coordinator}
	if r.ValLoss != nil {
		st.HasValLoss, st.ValLoss, st.ValStep = true, *r.ValLoss, r.ValStep
	}
	return st
}

// finalLine says how a job ended, from its final state.
func finalLine(st *pb.JobStatusResponse) string {
	var what string
	switch st.GetPhase() {
	case "done":
		what = fmt.Sprintf("job %s done at step %d, loss %.4f", st.GetJob(), st.GetStep(), st.GetLoss())
	case "failed":
		what = fmt.Sprintf("job %s failed at step %d: %s", st.GetJob(), st.GetStep(), st.GetError())
	default:
		what = fmt.Sprintf("job %s stopped at step %d of %d, loss %.4f", st.GetJob(), st.GetStep(), st.GetMaxSteps(), st.GetLoss())
	}
	if st.GetHasValLoss() {
		what += fmt.Sprintf(", val loss %.4f after %d steps", st.GetValLoss(), st.GetValStep())
	}
	return fmt.Sprintf("%s (final state recorded by the coordinator at %s, %s)", what, st.GetCoordinator(),
		time.UnixMilli(st.GetTimeUnixMs()).Local().Format(time.DateTime))
}

// unreachable turns the error of a call to a coordinator that does not
// answer into one clear line; other errors pass through.
func unreachable(addr string, err error, etcdGiven bool) error {
	if status.Code(err) != codes.Unavailable {
		return fmt.Errorf("coordinator %s: %w", addr, err)
	}
	hint := "; the job may be over or its coordinator moved: with --etcd URLS (and --prefix) status and watch find the current coordinator, or the job's final state"
	if etcdGiven {
		hint = ""
	}
	return fmt.Errorf("no coordinator answers at %s (%s)%s", addr, why(err), hint)
}

// why says briefly why a call failed.
func why(err error) string {
	if errors.Is(err, io.EOF) {
		return "it closed the stream"
	}
	msg := status.Convert(err).Message()
	switch {
	case strings.Contains(msg, "produced zero addresses"), strings.Contains(msg, "no such host"):
		return "its name does not resolve"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	}
	return msg
}
