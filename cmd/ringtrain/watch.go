package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/tlsconf"
)

var watchFlags struct {
	target   jobTarget
	interval time.Duration
	logEvery int
}

var watchCmd = &cobra.Command{
	Use:   "watch",
	Short: "Follow a job's progress live",
	Long: `Streams the job's status from its coordinator and shows phase, step/max, loss,
tokens/s and ETA on one live line, with each evaluation and cluster event
(joined, lost, healed, checkpoint, ...) on a line of its own above it. When
stdout is not a terminal it prints plain lines: the summary every few seconds
(or every --log-every steps) and on each phase change.

With --etcd it finds the coordinator through etcd and follows a failover to
a standby; once the job is over it prints the final state the coordinator
left in etcd. Exits 0 when the job is done, 1 if it failed or stopped.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := &watchFlags
		if err := f.target.check(cmd.Flags()); err != nil {
			return err
		}
		if f.logEvery < 0 {
			return fmt.Errorf("--log-every %d: must not be negative", f.logEvery)
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return watchJob(ctx, &f.target, f.interval, newJobProgress(cmd.OutOrStdout(), f.logEvery))
	},
}

func init() {
	f := watchCmd.Flags()
	watchFlags.target.addFlags(f)
	f.DurationVar(&watchFlags.interval, "interval", 500*time.Millisecond, "at most one update per interval")
	f.IntVar(&watchFlags.logEvery, "log-every", 0, logEveryHelp)
	rootCmd.AddCommand(watchCmd)
}

// watchJob follows the job on p until it ends (its outcome is the error),
// ctx ends (nil), or, without etcd, its coordinator goes away.
func watchJob(ctx context.Context, t *jobTarget, interval time.Duration, p *jobProgress) error {
	defer p.done()
	tn, err := tlsconf.Load(t.tls)
	if err != nil {
		return err
	}
	var etcd *clientv3.Client
	if t.etcd != "" {
		if etcd, err = newEtcdClient(t.etcd, tn); err != nil {
			return err
		}
		defer etcd.Close()
	}
	var last *pb.JobStatusResponse
	lastWhy := ""
	for {
		addr := t.coordinator
		if etcd != nil {
			fd, err := t.lookup(ctx, etcd)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.As(err, new(noCoordinator)):
				// Not started yet, or between a coordinator and its standby.
				if why := err.Error(); why != lastWhy {
					p.live.println("waiting: " + why)
					lastWhy = why
				}
				select {
				case <-time.After(250 * time.Millisecond):
				case <-ctx.Done():
					return nil
				}
				continue
			case err != nil:
				return err
			case fd.result != nil:
				st := resultStatus(fd.result)
				p.live.println(finalLine(st))
				return jobOutcome(st)
			}
			addr = fd.addr
		}
		st, err := follow(ctx, addr, tn, interval, p)
		if st != nil {
			last, lastWhy = st, ""
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF) && last != nil && (last.GetPhase() == "done" || last.GetPhase() == "failed"):
			return jobOutcome(last)
		case etcd == nil && errors.Is(err, io.EOF) && last != nil:
			return jobOutcome(last)
		case etcd == nil:
			return unreachable(addr, err, false)
		}
		// Its record outlives it by the lease: look again in a moment.
		if msg := fmt.Sprintf("the coordinator at %s is gone (%s); looking for the next one in etcd", addr, why(err)); msg != lastWhy {
			p.live.println(msg)
			lastWhy = msg
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
}

// follow streams the status from the coordinator at addr onto p until the
// stream ends; it returns the newest status received (nil if none) and
// why the stream ended (io.EOF: the coordinator closed it).
func follow(ctx context.Context, addr string, tn *tlsconf.Node, interval time.Duration, p *jobProgress) (*pb.JobStatusResponse, error) {
	cli, closeFn, err := dialCoordinator(addr, tn)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	stream, err := cli.WatchJob(ctx, &pb.WatchJobRequest{MinIntervalMs: interval.Milliseconds()})
	if err != nil {
		return nil, err
	}
	var last *pb.JobStatusResponse
	for {
		st, err := stream.Recv()
		if err != nil {
			return last, err
		}
		last = st
		p.update(st, time.Now())
	}
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
