package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/heal"
	"github.com/ringtrain/ringtrain/model/kernels"
	"github.com/ringtrain/ringtrain/tlsconf"
	"github.com/ringtrain/ringtrain/worker"
)

var workerFlags struct {
	etcd, listen, advertise, name, prefix, metrics string
	ttl                                            time.Duration
	exitWhenDone                                   bool
	bucketMiB                                      float64
	tls                                            tlsconf.Files
	threads                                        int
}

// defaultBucketMiB is PyTorch DDP's bucket_cap_mb.
const defaultBucketMiB = 25

const bucketHelp = "gradient bucket size in MiB: buckets are all-reduced while backward still runs (0: one all-reduce after backward)"

const threadsHelp = "threads of the model's kernels (0: GOMAXPROCS, every core)"

// setThreads applies --threads to the kernels of this process.
func setThreads(n int) error {
	if n < 0 {
		return fmt.Errorf("--threads %d: must not be negative", n)
	}
	kernels.SetThreads(n)
	if n > 0 {
		slog.Info("kernel threads", "threads", n)
	}
	return nil
}

// Test-only failpoints: stallEnv makes a worker hang before a step,
// stepDelayEnv paces it (a Go duration before each step).
const (
	stallEnv     = "RINGTRAIN_FAILPOINT_STALL_BEFORE_STEP"
	stepDelayEnv = "RINGTRAIN_FAILPOINT_STEP_DELAY"
)

var workerCmd = &cobra.Command{
	Use:   "worker",
	Short: "Run one worker; it joins whatever job the coordinator runs",
	Long: `Runs one training worker. It waits for the coordinator to publish its job,
checks that this machine's copy of the job's data (the paths of the job file)
matches the coordinator's (a shard that differs is named and the worker exits),
registers in etcd (name and --advertise address, under a lease renewed every
--ttl/3) and trains its rank of every generation it is a member of, talking to
its ring neighbours over gRPC on --listen. Checkpoints go to the coordinator,
which keeps the run dir: no shared filesystem is needed.

It keeps training while the coordinator or etcd is away. SIGTERM or SIGINT
leaves the ring at the next step boundary (no step is lost) and exits 0; a
second signal exits at once. With --exit-when-done it exits once the job it
took part in is over (0 if done, 1 if failed).

--metrics-listen serves Prometheus /metrics (step phase, all-reduce,
checkpoint upload and state transfer histograms; the generation and rank)
and /healthz, for probes (docs/dashboard.md lists the metrics).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := workerFlags
		if err := setThreads(f.threads); err != nil {
			return err
		}
		tn, err := tlsconf.Load(f.tls)
		if err != nil {
			return err
		}
		ctx, leave, release := stopSignals(cmd.Context(), "worker")
		defer release()
		cli, err := newEtcdClient(f.etcd, tn)
		if err != nil {
			return err
		}
		defer cli.Close()
		lis, adv, err := listenAdvertise(f.listen, f.advertise)
		if err != nil {
			return err
		}
		tn.WarnPlaintext(f.listen, adv, f.metrics)
		name := f.name
		if name == "" {
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(lis.Addr().String())
			name = fmt.Sprintf("%s-%s", host, port)
		}
		var wm *worker.Metrics
		if f.metrics != "" {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			wm = worker.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"worker": name}, reg))
			stop, err := serveMetrics(f.metrics, reg)
			if err != nil {
				lis.Close()
				return fmt.Errorf("--metrics-listen %s: %w", f.metrics, err)
			}
			defer stop()
		}
		stall, _ := strconv.Atoi(os.Getenv(stallEnv))
		delay, _ := time.ParseDuration(os.Getenv(stepDelayEnv))
		err = runWorker(ctx, leave, lis, tn, worker.Config{
			Etcd: cli, Prefix: f.prefix, Name: name, Advertise: adv, TTL: f.ttl,
			ExitWhenDone: f.exitWhenDone, StallBeforeStep: stall, StepDelay: delay, Metrics: wm,
		}, int(f.bucketMiB*(1<<20)))
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			slog.Info("worker stopped", "name", name)
			return nil
		}
		return err
	},
}

// runWorker serves the peer services on lis and runs one worker with the
// real trainer and gRPC rings until ctx ends, it leaves, or the job ends
// (with cfg.ExitWhenDone).
func runWorker(ctx context.Context, leave <-chan struct{}, lis net.Listener, tn *tlsconf.Node, cfg worker.Config, bucketBytes int) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tr := allreduce.NewGRPCTransport()
	tr.SetCredentials(tn.Credentials()) // the rings' gRPC streams and their raw data connections alike
	state := heal.NewServer(log)
	srv := worker.NewGRPCServer(tr, state)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		coordinator.StopGRPC(srv, 2*time.Second)
		<-served
	}()
	cfg.Trainer, cfg.Rings, cfg.State = worker.TrainerPackage(bucketBytes), worker.AllreduceRings{Transport: tr}, state
	cfg.CoordinatorDial = []grpc.DialOption{tn.DialOption()}
	cfg.PeerDial = append(allreduce.DialOptions(), tn.DialOption())
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	return w.Run(ctx, leave)
}

func init() {
	f := workerCmd.Flags()
	f.StringVar(&workerFlags.etcd, "etcd", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
	f.StringVar(&workerFlags.listen, "listen", "127.0.0.1:7071", "gRPC address for the peers (all-reduce, state transfer); use :7071 to serve other machines")
	f.StringVar(&workerFlags.advertise, "advertise", "", "host:port peers reach --listen on (default: hostname and the listen port)")
	f.StringVar(&workerFlags.name, "name", "", "worker name, unique in the cluster (default: hostname-port)")
	f.StringVar(&workerFlags.prefix, "prefix", cluster.DefaultPrefix, "etcd key prefix of the cluster")
	f.StringVar(&workerFlags.metrics, "metrics-listen", "", "HTTP address for Prometheus /metrics and /healthz, e.g. :9465 (empty: off)")
	f.DurationVar(&workerFlags.ttl, "ttl", 5*time.Second, "registration lease TTL: a worker that goes silent is dropped after this long")
	f.BoolVar(&workerFlags.exitWhenDone, "exit-when-done", false, "exit once a job this worker trained is over (0 if done, 1 if failed)")
	f.Float64Var(&workerFlags.bucketMiB, "bucket-mb", defaultBucketMiB, bucketHelp)
	tlsconf.AddFlags(f, &workerFlags.tls)
	f.IntVar(&workerFlags.threads, "threads", 0, threadsHelp)
	rootCmd.AddCommand(workerCmd)
}
