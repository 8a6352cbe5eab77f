package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/trainer"
)

var coordFlags struct {
	etcd, listen, advertise, jobFile, runDir, metrics, prefix string
	settle, ttl, regroup, stall                               time.Duration
	sets                                                      []string
}

var coordinatorCmd = &cobra.Command{
	Use:   "coordinator",
	Short: "Run the coordinator of one job",
	Long: `Runs the coordinator of the job in --job: it waits to win the job's election in
etcd (a second coordinator waits as standby), forms generations from the
registered workers, commits coordinated checkpoints in --run-dir, serves the
job's status over gRPC on --listen and Prometheus metrics on --metrics-listen,
and exits 0 once the job is done (after its final checkpoint). Restarted on the
same run dir, it resumes from the newest committed checkpoint. --set key=value
overrides a key of the job file (repeatable; checked like the file, and kept
in the checkpoints' state.json with the rest of the job).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := coordFlags
		if f.jobFile == "" {
			return fmt.Errorf("--job: required")
		}
		j, text, err := loadJob(f.jobFile, f.sets, 0)
		if err != nil {
			return err
		}
		runDir := f.runDir
		if runDir == "" {
			runDir = filepath.Join("runs", j.Name)
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		cli, err := newEtcdClient(f.etcd)
		if err != nil {
			return err
		}
		defer cli.Close()
		lis, adv, err := listenAdvertise(f.listen, f.advertise)
		if err != nil {
			return err
		}
		c, err := coordinator.New(coordinator.Config{
			Etcd: cli, Prefix: f.prefix, Job: j, JobFile: f.jobFile, JobText: text, RunDir: runDir,
			Advertise: adv, Settle: f.settle, SessionTTL: f.ttl, RegroupDelay: f.regroup, StallTimeout: f.stall, Checkpoints: coordinator.FSCheckpoints{},
		})
		if err != nil {
			return err
		}
		return serveCoordinator(ctx, c, lis, f.metrics, nil)
	},
}

// serveCoordinator serves c's gRPC on lis and metrics on metricsAddr ("" for
// none) while c runs the job; progress, when set, gets the coordinator.
func serveCoordinator(ctx context.Context, c *coordinator.Coordinator, lis net.Listener, metricsAddr string, progress func(context.Context, *coordinator.Coordinator)) error {
	srv := coordinator.NewGRPCServer(c)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		coordinator.StopGRPC(srv, 2*time.Second)
		<-served
	}()
	slog.Info("coordinator serving", "listen", lis.Addr().String(), "run_dir", c.RunDir())
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(coordinator.NewCollector(c), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ml, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			slog.Warn("metrics disabled", "listen", metricsAddr, "err", err)
		} else {
			hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			go hs.Serve(ml)
			defer hs.Close()
			slog.Info("prometheus metrics", "url", "http://"+ml.Addr().String()+"/metrics")
		}
	}
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		if progress != nil {
			progress(pctx, c)
		} else {
			logProgress(pctx, c)
		}
	}()
	err := c.Run(ctx)
	pcancel()
	<-pdone
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("coordinator interrupted; restart it on the same run dir to resume from the newest checkpoint")
		}
		return err
	}
	st := c.Status()
	slog.Info("job done", "step", st.Step, "loss", st.Loss, "run_dir", c.RunDir())
	return nil
}

// logProgress logs the job's progress every few seconds.
func logProgress(ctx context.Context, c *coordinator.Coordinator) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	var last coordinator.Status
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := c.Status()
			if s.Step != last.Step || s.Phase != last.Phase {
				slog.Info("progress", "phase", s.Phase, "step", s.Step, "max_steps", s.MaxSteps, "loss", s.Loss,
					"tokens_per_s", int64(s.TokensPerS), "eta", s.ETA.Round(time.Second), "err", s.Err)
			}
			last = s
		}
	}
}

// listenAdvertise listens on the --listen address and returns the address
// others reach it on: --advertise, or one made from the listener.
func listenAdvertise(listen, advertise string) (net.Listener, string, error) {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, "", fmt.Errorf("--listen %s: %w", listen, err)
	}
	if advertise == "" {
		advertise = advertiseOf(lis.Addr())
	}
	return lis, advertise, nil
}

// advertiseOf turns a listen address into one others can dial: an
// unspecified host becomes this machine's hostname.
func advertiseOf(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

func init() {
	f := coordinatorCmd.Flags()
	f.StringVar(&coordFlags.etcd, "etcd", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
	f.StringVar(&coordFlags.listen, "listen", ":7070", "gRPC address to serve status and worker reports on")
	f.StringVar(&coordFlags.advertise, "advertise", "", "host:port workers reach --listen on (default: hostname and the listen port)")
	f.StringVar(&coordFlags.jobFile, "job", "", "job file (YAML or JSON; required)")
	f.StringArrayVar(&coordFlags.sets, "set", nil, "override a key of the job file: --set train.lr=1e-3 (repeatable)")
	f.StringVar(&coordFlags.runDir, "run-dir", "", "run directory, shared with the workers (default runs/<job name>)")
	f.StringVar(&coordFlags.metrics, "metrics-listen", ":9464", "HTTP address for Prometheus /metrics (empty: off)")
	f.StringVar(&coordFlags.prefix, "prefix", coordinator.DefaultPrefix, "etcd key prefix of the cluster")
	f.DurationVar(&coordFlags.settle, "settle", 2*time.Second, "how long to wait for more workers once workers.min have registered")
	f.DurationVar(&coordFlags.ttl, "ttl", 5*time.Second, "lease TTL of the coordinator's election")
	f.DurationVar(&coordFlags.regroup, "regroup-delay", 6*time.Second, "after a ring breaks, how long to wait for a lost worker's lease to expire before re-forming the ring with the same workers (keep above the workers' --ttl)")
	f.DurationVar(&coordFlags.stall, "stall-timeout", 10*time.Minute, "re-form the generation when one of its workers sends no report for this long")
	rootCmd.AddCommand(coordinatorCmd)
}

// loadJob reads the job file with the --set overrides applied. steps > 0
// (local --steps) runs it for that many optimizer steps, with
// train.warmup scaled alike (job.StepsOverrides).
func loadJob(path string, sets []string, steps int) (*job.Job, string, error) {
	j, text, err := job.LoadText(path, sets...)
	if err == nil {
		if err = trainer.CheckJob(j); err != nil { // the model section, before any worker builds it
			err = fmt.Errorf("job file %s: %w", path, err)
		}
	}
	if err != nil || steps == 0 {
		return j, text, err
	}
	all := append(slices.Clone(sets), j.StepsOverrides(steps, sets)...)
	j2, text, err := job.LoadText(path, all...)
	if err != nil {
		return nil, "", fmt.Errorf("--steps %d: %w", steps, err)
	}
	if j2.Train.Warmup != j.Train.Warmup {
		slog.Info("--steps: train.warmup scaled to the same share of the run", "max_steps", steps, "warmup", j2.Train.Warmup, "job_warmup", j.Train.Warmup)
	}
	return j2, text, nil
}
