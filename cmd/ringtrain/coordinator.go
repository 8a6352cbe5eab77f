package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/dashboard"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/tlsconf"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

var coordFlags struct {
	etcd, listen, advertise, jobFile, runDir, metrics, prefix, http string
	settle, ttl, window                                             time.Duration
	tls                                                             tlsconf.Files
	sets                                                            []string
}

var coordinatorCmd = &cobra.Command{
	Use:   "coordinator",
	Short: "Run the coordinator of one job",
	Long: `Runs the coordinator of the job in --job: it waits to win the job's election in
etcd (a second coordinator waits as standby and takes over, without a step
lost, when the first dies), forms generations from the registered workers,
keeps the run dir (--run-dir: checkpoints and metrics.jsonl; workers send
their checkpoints here over gRPC), serves the job's status over gRPC on
--listen, Prometheus metrics on --metrics-listen and, with --http, the live
dashboard page (docs/dashboard.md), and exits 0 once the job is done (after
its final checkpoint), leaving its final state in etcd for ringtrain status
--etcd. Restarted on the same run dir it resumes
from the newest state: the workers' if they are still training, else the
newest committed checkpoint. --set key=value overrides a key of the job file
(repeatable; checked like the file: ringtrain job check shows the result).

SIGTERM or SIGINT stops the job gracefully: the workers finish the step in
flight, its checkpoint is committed, and the coordinator exits 0. A second
signal exits at once.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := coordFlags
		if f.jobFile == "" {
			return fmt.Errorf("--job: required")
		}
		j, err := loadJob(f.jobFile, f.sets, 0)
		if err != nil {
			return err
		}
		runDir := f.runDir
		if runDir == "" {
			runDir = filepath.Join("runs", j.Name)
		}
		tn, err := tlsconf.Load(f.tls)
		if err != nil {
			return err
		}
		ctx, graceful, release := stopSignals(cmd.Context(), "coordinator")
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
		tn.WarnPlaintext(f.listen, adv, f.metrics, f.http)
		c, err := coordinator.New(coordinator.Config{
			Etcd: cli, Prefix: f.prefix, Job: j, RunDir: runDir, Advertise: adv, Settle: f.settle,
			SessionTTL: f.ttl, ReportWindow: f.window, Dial: []grpc.DialOption{tn.DialOption()},
			Extras: tokenizerExtras(j),
		})
		if err != nil {
			return err
		}
		return serveCoordinator(ctx, graceful, c, lis, tn, serveOptions{metrics: f.metrics, http: f.http})
	},
}

// serveOptions say what serveCoordinator serves besides gRPC.
type serveOptions struct {
	metrics string // Prometheus /metrics and /healthz address ("": none)
	// reg, if set, is the registry to serve (it may hold more than the
	// coordinator's metrics, e.g. in-process workers').
	reg  *prometheus.Registry
	http string // dashboard address ("": none)
	// progress shows the job's progress (default: a log line every few seconds).
	progress func(context.Context, *coordinator.Coordinator)
	// served, if set, is told the dashboard's URL.
	served func(dashboardURL string)
}

// serveCoordinator serves c's gRPC on lis, and what o asks for, while c
// runs the job. A close of graceful stops the job gracefully.
func serveCoordinator(ctx context.Context, graceful <-chan struct{}, c *coordinator.Coordinator, lis net.Listener, tn *tlsconf.Node, o serveOptions) error {
	srv := coordinator.NewGRPCServer(c, !tn.Enabled(), tn.ServerOption())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		coordinator.StopGRPC(srv, 2*time.Second)
		<-served
	}()
	slog.Info("coordinator serving", "listen", lis.Addr().String(), "run_dir", c.RunDir())
	if o.metrics != "" {
		reg := o.reg
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		reg.MustRegister(coordinator.NewCollector(c), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		stop, err := serveMetrics(o.metrics, reg)
		if err != nil {
			slog.Warn("metrics disabled", "listen", o.metrics, "err", err)
		} else {
			defer stop()
		}
	}
	if o.http != "" {
		url, stop, err := serveHTTP(o.http, dashboard.New(c))
		if err != nil {
			return fmt.Errorf("--http %s: %w", o.http, err)
		}
		defer stop()
		if o.served != nil {
			o.served(url)
		} else {
			slog.Info("dashboard", "url", url)
		}
	}
	go func() {
		select {
		case <-graceful:
			c.Stop()
		case <-ctx.Done():
		}
	}()
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		if o.progress != nil {
			o.progress(pctx, c)
		} else {
			logProgress(pctx, c)
		}
	}()
	err := c.Run(ctx)
	pcancel()
	<-pdone
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("coordinator interrupted; start it again on the same run dir to resume")
		}
		return err
	}
	st := c.Status()
	slog.Info("job over", "phase", st.Phase, "step", st.Step, "loss", st.Loss, "run_dir", c.RunDir())
	return nil
}

// serveMetrics serves reg on http://addr/metrics, and /healthz (200 while
// the process runs), until stop.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	url, stop, err := serveHTTP(addr, mux)
	if err != nil {
		return nil, err
	}
	slog.Info("prometheus metrics", "url", url+"metrics")
	return stop, nil
}

// serveHTTP serves h on addr until stop; url is where (a host that
// listens everywhere shown as localhost).
func serveHTTP(addr string, h http.Handler) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	host, port, _ := net.SplitHostPort(l.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/", func() { hs.Close() }, nil
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
					"tokens_per_s", int64(s.TokensPerS), "eta", s.ETA.Round(time.Second), "note", s.Err)
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
	f.StringVar(&coordFlags.listen, "listen", "127.0.0.1:7070", "gRPC address to serve status, reports and checkpoints on; use :7070 to serve other machines")
	f.StringVar(&coordFlags.advertise, "advertise", "", "host:port workers reach --listen on (default: hostname and the listen port)")
	f.StringVar(&coordFlags.jobFile, "job", "", "job file (YAML or JSON; required)")
	f.StringArrayVar(&coordFlags.sets, "set", nil, "override a key of the job file: --set train.lr=1e-3 (repeatable)")
	f.StringVar(&coordFlags.runDir, "run-dir", "", "run directory: checkpoints and metrics.jsonl (default runs/<job name>)")
	f.StringVar(&coordFlags.metrics, "metrics-listen", "127.0.0.1:9464", "HTTP address for Prometheus /metrics and /healthz (empty: off)")
	f.StringVar(&coordFlags.http, "http", "", "HTTP address of the live dashboard page, e.g. 127.0.0.1:8080 (empty: off)")
	f.StringVar(&coordFlags.prefix, "prefix", cluster.DefaultPrefix, "etcd key prefix of the cluster")
	f.DurationVar(&coordFlags.settle, "settle", 2*time.Second, "how long to wait for more workers before forming or growing a ring")
	f.DurationVar(&coordFlags.ttl, "ttl", 5*time.Second, "lease TTL of the coordinator's election: a standby takes over this long after the leader dies")
	f.DurationVar(&coordFlags.window, "report-window", 2*time.Second, "after a ring breaks, how long its members have to answer before the silent ones are dropped")
	tlsconf.AddFlags(f, &coordFlags.tls)
	rootCmd.AddCommand(coordinatorCmd)
}

// loadJob reads the job file with the --set overrides applied and checks
// the model section too (before any worker builds it). steps > 0 (local
// --steps) runs it for that many optimizer steps, with train.warmup scaled
// alike (job.StepsOverrides).
func loadJob(path string, sets []string, steps int) (*job.Job, error) {
	j, _, err := job.LoadText(path, sets...)
	if err == nil {
		if err = trainer.CheckJob(j); err != nil {
			err = fmt.Errorf("job file %s: %w", path, err)
		}
	}
	if err != nil || steps == 0 {
		return j, err
	}
	all := append(slices.Clone(sets), j.StepsOverrides(steps, sets)...)
	j2, _, err := job.LoadText(path, all...)
	if err != nil {
		return nil, fmt.Errorf("--steps %d: %w", steps, err)
	}
	if j2.Train.Warmup != j.Train.Warmup {
		slog.Info("--steps: train.warmup scaled to the same share of the run", "max_steps", steps, "warmup", j2.Train.Warmup, "job_warmup", j.Train.Warmup)
	}
	return j2, nil
}

// tokenizerExtras are the tokenizer files of the job, which the
// coordinator copies into every checkpoint so that the run carries its
// tokenizer (none if the job has none).
func tokenizerExtras(j *job.Job) map[string]string {
	dir := j.TokenizerDir()
	if dir == "" || !tokenizer.IsDir(dir) {
		return nil
	}
	names, err := tokenizer.Files(dir)
	if err != nil {
		slog.Warn("tokenizer files", "dir", dir, "err", err)
		return nil
	}
	out := map[string]string{}
	for _, n := range names {
		abs, err := filepath.Abs(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		out[n] = abs
	}
	return out
}
