package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/model/kernels"
	"github.com/ringtrain/ringtrain/worker"
)

var workerFlags struct {
	etcd, listen, advertise, name, prefix string
	ttl                                   time.Duration
	exitWhenDone                          bool
	bucketMiB                             float64
	threads                               int
}

// defaultBucketMiB is PyTorch DDP's bucket_cap_mb.
const defaultBucketMiB = 25

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

const bucketHelp = "gradient bucket size in MiB: buckets are all-reduced while backward still runs (0: one all-reduce after backward)"

var workerCmd = &cobra.Command{
	Use:   "worker",
	Short: "Run one worker; it joins whatever job the coordinator runs",
	Long: `Runs one training worker: it registers in etcd (name and --advertise address,
under a lease renewed every --ttl/3), waits for the coordinator's generations
and trains its rank of each generation it is a member of, talking to its ring
neighbours over gRPC on --listen. Data and run dir paths of the job must be
reachable from this machine (a shared filesystem). Runs until interrupted,
or with --exit-when-done until the job it took part in is over.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := workerFlags
		if err := setThreads(f.threads); err != nil {
			return err
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
		name := f.name
		if name == "" {
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(lis.Addr().String())
			name = fmt.Sprintf("%s-%s", host, port)
		}
		err = runWorker(ctx, lis, worker.Config{
			Etcd: cli, Prefix: f.prefix, Name: name, Advertise: adv, TTL: f.ttl,
			ExitWhenDone: f.exitWhenDone, BucketBytes: int(f.bucketMiB * (1 << 20)),
		})
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			slog.Info("worker stopped", "name", name)
			return nil
		}
		return err
	},
}

// runWorker serves the all-reduce peer service on lis and runs one worker
// with the real trainer and gRPC rings until ctx ends (or the job ends,
// with cfg.ExitWhenDone).
func runWorker(ctx context.Context, lis net.Listener, cfg worker.Config) error {
	tr := allreduce.NewGRPCTransport()
	srv := worker.NewGRPCServer(tr)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		coordinator.StopGRPC(srv, 2*time.Second)
		<-served
	}()
	cfg.Trainer, cfg.Rings = worker.TrainerPackage, worker.AllreduceRings{Transport: tr}
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func init() {
	f := workerCmd.Flags()
	f.StringVar(&workerFlags.etcd, "etcd", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
	f.StringVar(&workerFlags.listen, "listen", ":7071", "gRPC address for the all-reduce peers")
	f.StringVar(&workerFlags.advertise, "advertise", "", "host:port peers reach --listen on (default: hostname and the listen port)")
	f.StringVar(&workerFlags.name, "name", "", "worker name, unique in the cluster (default: hostname-port)")
	f.IntVar(&workerFlags.threads, "threads", 0, threadsHelp)
	f.StringVar(&workerFlags.prefix, "prefix", coordinator.DefaultPrefix, "etcd key prefix of the cluster")
	f.DurationVar(&workerFlags.ttl, "ttl", 5*time.Second, "registration lease TTL: a dead worker is noticed after this long")
	f.BoolVar(&workerFlags.exitWhenDone, "exit-when-done", false, "exit once a job this worker trained is over (0 if done, 1 if failed)")
	f.Float64Var(&workerFlags.bucketMiB, "bucket-mb", defaultBucketMiB, bucketHelp)
	rootCmd.AddCommand(workerCmd)
}
