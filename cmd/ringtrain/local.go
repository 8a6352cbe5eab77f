package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/embedetcd"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/worker"
)

var localFlags struct {
	jobFile, runDir, metrics, http    string
	workers, steps, threads, logEvery int
	bucketMiB                         float64
	sets                              []string
}

var localCmd = &cobra.Command{
	Use:   "local",
	Short: "Run a job on this machine: embedded etcd, a coordinator and N workers over loopback gRPC",
	Long: `Runs the whole cluster in this process: an embedded etcd (data in RUN/etcd, on
free loopback ports), a coordinator and --workers workers, each with its own
gRPC server on loopback, exactly as separate machines would talk. Progress is
shown on stderr (a live line on a terminal, with evaluations and events on
lines of their own; plain lines every few seconds or --log-every steps
elsewhere); --http serves the live dashboard page and prints its URL. The run
dir keeps metrics.jsonl and the checkpoints.
Run again on the same run dir to resume from its newest committed checkpoint.
--set key=value overrides a key of the job file (repeatable; checked like the
file: ringtrain job check shows the result). --steps N runs N optimizer steps
instead of train.max_steps, with train.warmup scaled to the same share of the
run unless --set gives it. --workers sets workers.min and max. --threads sets
the threads of the model's kernels for the whole process, shared by the
in-process workers; by default the cores are split between them
(GOMAXPROCS / --workers, at least 1).
SIGTERM or SIGINT finishes the step in flight, commits its checkpoint and
exits 0 (a second signal exits at once).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := localFlags
		if f.jobFile == "" {
			return fmt.Errorf("--job: required")
		}
		if f.workers < 1 {
			return fmt.Errorf("--workers %d: must be at least 1", f.workers)
		}
		if f.steps < 0 {
			return fmt.Errorf("--steps %d: must not be negative", f.steps)
		}
		if f.logEvery < 0 {
			return fmt.Errorf("--log-every %d: must not be negative", f.logEvery)
		}
		threads := f.threads
		if threads == 0 {
			threads = max(1, runtime.GOMAXPROCS(0)/f.workers)
		}
		if err := setThreads(threads); err != nil {
			return err
		}
		j, err := loadJob(f.jobFile, f.sets, f.steps)
		if err != nil {
			return err
		}
		j.Workers.Min, j.Workers.Max = f.workers, f.workers
		if err := j.Validate(f.workers); err != nil {
			return fmt.Errorf("--workers %d: %w", f.workers, err)
		}
		runDir := f.runDir
		if runDir == "" {
			runDir = filepath.Join("runs", j.Name)
		}
		ctx, graceful, release := stopSignals(cmd.Context(), "local")
		defer release()
		return runLocal(ctx, graceful, j, runDir, f.workers, localServe{metrics: f.metrics, http: f.http, logEvery: f.logEvery}, int(f.bucketMiB*(1<<20)))
	},
}

// localServe is what local serves and how it shows progress.
type localServe struct {
	metrics, http string
	logEvery      int
}

func runLocal(ctx context.Context, graceful <-chan struct{}, j *job.Job, runDir string, n int, ls localServe, bucketBytes int) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("--run-dir: %w", err)
	}
	// Membership is per process: a previous run's etcd state (leases of
	// workers that are gone) must not leak into this one.
	etcdDir := filepath.Join(runDir, "etcd")
	if err := os.RemoveAll(etcdDir); err != nil {
		return fmt.Errorf("clear %s: %w", etcdDir, err)
	}
	e, err := embedetcd.Start(embedetcd.Config{DataDir: etcdDir})
	if err != nil {
		return err
	}
	defer e.Close()
	cli, err := newEtcdClient(e.ClientURL, nil)
	if err != nil {
		return err
	}
	defer cli.Close()
	slog.Debug("embedded etcd", "client", e.ClientURL, "data_dir", etcdDir)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The live progress line says what the cluster does; its parts log
	// warnings only, unless --log-level asks for debug.
	log := slog.Default()
	if !slog.Default().Enabled(ctx, slog.LevelDebug) {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c, err := coordinator.New(coordinator.Config{
		Logger: log, Etcd: cli, Job: j, RunDir: runDir,
		Advertise: lis.Addr().String(), Settle: 200 * time.Millisecond, Extras: tokenizerExtras(j),
	})
	if err != nil {
		lis.Close()
		return err
	}

	// With --metrics-listen, the workers' metrics are served with the
	// coordinator's, labelled with the worker's name.
	var reg *prometheus.Registry
	if ls.metrics != "" {
		reg = prometheus.NewRegistry()
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer wcancel()
	werrs := make(chan error, n)
	for i := range n {
		wl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		name := fmt.Sprintf("local-%d", i)
		var wm *worker.Metrics
		if reg != nil {
			wm = worker.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"worker": name}, reg))
		}
		wg.Go(func() {
			err := runWorker(wctx, nil, wl, nil, worker.Config{
				Etcd: cli, Prefix: cluster.DefaultPrefix, Name: name, Advertise: wl.Addr().String(),
				TTL: 5 * time.Second, ExitWhenDone: true, Logger: log, Metrics: wm,
			}, bucketBytes)
			if err != nil && !errors.Is(err, context.Canceled) {
				werrs <- fmt.Errorf("worker %s: %w", name, err)
				wcancel()
			}
		})
	}
	err = serveCoordinator(wctx, graceful, c, lis, nil, serveOptions{
		metrics: ls.metrics, reg: reg, http: ls.http,
		progress: func(ctx context.Context, c *coordinator.Coordinator) { localProgress(ctx, c, ls.logEvery) },
		served:   func(url string) { fmt.Fprintf(os.Stderr, "dashboard: %s\n", url) },
	})
	if err != nil {
		select {
		case werr := <-werrs:
			return werr
		default:
		}
		return err
	}
	return nil
}

// localProgress shows the job's progress on stderr until ctx ends.
func localProgress(ctx context.Context, c *coordinator.Coordinator, logEvery int) {
	p := newJobProgress(os.Stderr, logEvery)
	defer p.done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.update(c.StatusProto(), time.Now())
			return
		case now := <-t.C:
			p.update(c.StatusProto(), now)
		}
	}
}

func init() {
	f := localCmd.Flags()
	f.StringVar(&localFlags.jobFile, "job", "", "job file (YAML or JSON; required)")
	f.IntVar(&localFlags.workers, "workers", 1, "number of workers")
	f.StringVar(&localFlags.runDir, "run-dir", "", "run directory (default runs/<job name>)")
	f.IntVar(&localFlags.steps, "steps", 0, "override train.max_steps (0: the job's)")
	f.StringVar(&localFlags.metrics, "metrics-listen", "", "HTTP address for Prometheus /metrics of the coordinator and the workers (empty: off)")
	f.StringVar(&localFlags.http, "http", "", "HTTP address of the live dashboard page, e.g. 127.0.0.1:8080 (empty: off)")
	f.IntVar(&localFlags.logEvery, "log-every", 0, logEveryHelp)
	f.Float64Var(&localFlags.bucketMiB, "bucket-mb", defaultBucketMiB, bucketHelp)
	f.StringArrayVar(&localFlags.sets, "set", nil, "override a key of the job file: --set train.lr=1e-3 (repeatable)")
	f.IntVar(&localFlags.threads, "threads", 0, "threads of the model's kernels for the whole process (0: GOMAXPROCS / --workers, at least 1)")
	rootCmd.AddCommand(localCmd)
}
