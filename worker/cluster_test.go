package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/job"
)

func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	e, err := coordinator.StartEtcd(coordinator.EtcdConfig{DataDir: filepath.Join(t.TempDir(), "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func toyJob(t *testing.T, steps, every, minW, maxW int) *job.Job {
	t.Helper()
	src := fmt.Sprintf(`{name: toy, data: {train: "unused_*.bin"}, train: {global_batch: 12, micro_batch: 1, max_steps: %d, lr: 0.3, warmup: 0},
eval: {every: 0}, checkpoint: {every: %d, keep: 2}, workers: {min: %d, max: %d}}`, steps, every, minW, maxW)
	j, err := job.Parse([]byte(src), "toy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// runToyCluster runs a coordinator and w in-process workers (in-memory
// rings, real etcd, real gRPC reports) on runDir until the coordinator
// returns or stop says to stop.
func runToyCluster(t *testing.T, cli *clientv3.Client, j *job.Job, runDir string, w int, hook func(int) error, stop func(coordinator.Status) bool, afterCoordinator ...func()) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))
	c, err := coordinator.New(coordinator.Config{Etcd: cli, Prefix: "/" + t.Name(), Job: j, RunDir: runDir,
		Advertise: lis.Addr().String(), Settle: 100 * time.Millisecond, Checkpoints: coordinator.FSCheckpoints{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := coordinator.NewGRPCServer(c)
	go srv.Serve(lis)
	defer coordinator.StopGRPC(srv, time.Second)

	rings := AllreduceRings{Transport: allreduce.NewInmemNetwork()}
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range w {
		wk, err := New(Config{Etcd: cli, Prefix: "/" + t.Name(), Name: fmt.Sprintf("w%d", i), Advertise: fmt.Sprintf("inmem:%d", i),
			TTL: 2 * time.Second, Trainer: newToyTrainer(hook), Rings: rings, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := wk.Run(wctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker: %v", err)
			}
		}()
	}
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	var res error
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case res = <-done:
			break loop
		case <-tick.C:
			if stop != nil && stop(c.Status()) {
				ccancel()
				res = <-done
				break loop
			}
		}
	}
	ccancel()
	for _, f := range afterCoordinator {
		f()
	}
	wcancel()
	wg.Wait()
	return res
}

func readLosses(t *testing.T, runDir string) map[int]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	losses := map[int]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l MetricsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if _, dup := losses[l.Step]; dup {
			t.Errorf("step %d logged twice", l.Step)
		}
		losses[l.Step] = l.Loss
	}
	return losses
}

func TestToyClusterWorldSizesAgree(t *testing.T) {
	cli := startEtcd(t)
	const steps = 6
	var ref map[int]float64
	for _, w := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("W=%d", w), func(t *testing.T) {
			runDir := t.TempDir()
			if err := runToyCluster(t, cli, toyJob(t, steps, 2, w, w), runDir, w, nil, nil); err != nil {
				t.Fatalf("job: %v", err)
			}
			losses := readLosses(t, runDir)
			if len(losses) != steps {
				t.Fatalf("%d metrics lines, want %d", len(losses), steps)
			}
			if ref == nil {
				ref = losses
			}
			for s := range steps {
				if d := math.Abs(losses[s] - ref[s]); d > 1e-5*math.Abs(ref[s]) {
					t.Errorf("step %d: loss %v, W=1 had %v", s, losses[s], ref[s])
				}
			}
			last, err := filepath.Glob(filepath.Join(runDir, "checkpoints", "step_*"))
			if err != nil || len(last) != 2 {
				t.Errorf("checkpoints %v (keep 2), err %v", last, err)
			}
			if _, err := os.Stat(filepath.Join(coordinator.CheckpointDir(runDir, steps), "COMMIT")); err != nil {
				t.Errorf("final checkpoint not committed: %v", err)
			}
		})
	}
}

func TestToyClusterResumeContinuesExactly(t *testing.T) {
	cli := startEtcd(t)
	const steps = 8
	full := t.TempDir()
	if err := runToyCluster(t, cli, toyJob(t, steps, 3, 2, 2), full, 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := readLosses(t, full)

	// First attempt: the coordinator is stopped once the checkpoint at 3 is
	// committed and the workers are held at step 4, past it.
	part := t.TempDir()
	hold := make(chan struct{})
	hook := func(step int) error {
		if step >= 4 {
			<-hold
		}
		return nil
	}
	err := runToyCluster(t, cli, toyJob(t, steps, 3, 2, 2), part, 2, hook, func(s coordinator.Status) bool {
		return s.LastCheckpoint >= 3
	}, func() { close(hold) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first attempt: %v, want canceled", err)
	}
	if first := readLosses(t, part); len(first) < 3 {
		t.Fatalf("first attempt logged %v, want steps 0..2 at least", first)
	}
	if err := runToyCluster(t, cli, toyJob(t, steps, 3, 2, 2), part, 2, nil, nil); err != nil {
		t.Fatalf("resumed: %v", err)
	}
	got := readLosses(t, part)
	if len(got) != steps {
		t.Fatalf("%d metrics lines after resume, want %d: %v", len(got), steps, got)
	}
	for s := range steps {
		if got[s] != want[s] {
			t.Errorf("step %d: resumed loss %v, uninterrupted %v", s, got[s], want[s])
		}
	}
}

var testLogLevel = func() slog.Level {
	if os.Getenv("RINGTRAIN_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

func TestToyStandbyCoordinator(t *testing.T) {
	cli := startEtcd(t)
	j := toyJob(t, 4, 2, 1, 1)
	runDir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))
	newCoord := func() *coordinator.Coordinator {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := coordinator.New(coordinator.Config{Etcd: cli, Prefix: "/standby", Job: j, RunDir: runDir,
			Advertise: lis.Addr().String(), Settle: 10 * time.Millisecond, SessionTTL: time.Second,
			Checkpoints: coordinator.FSCheckpoints{}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		srv := coordinator.NewGRPCServer(c)
		go srv.Serve(lis)
		t.Cleanup(func() { coordinator.StopGRPC(srv, time.Second) })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// One worker, held before step 1 until the first coordinator is gone.
	hold := make(chan struct{})
	var release sync.Once
	defer release.Do(func() { close(hold) })
	hook := func(step int) error {
		if step == 1 {
			<-hold
		}
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wk, err := New(Config{Etcd: cli, Prefix: "/standby", Name: "w0", Advertise: "inmem:0", TTL: time.Second,
		Trainer: newToyTrainer(hook), Rings: AllreduceRings{Transport: allreduce.NewInmemNetwork()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); wk.Run(wctx) }()

	first, second := newCoord(), newCoord()
	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- first.Run(ctx1) }()
	for first.Status().Generation == 0 { // until first leads and published a generation
		if ctx.Err() != nil {
			t.Fatal("first coordinator published no generation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	go func() { done2 <- second.Run(ctx) }()
	time.Sleep(300 * time.Millisecond) // second campaigns; it must not win while first leads
	if st := second.Status(); st.Phase != coordinator.PhaseWaiting || !strings.Contains(st.Err, "standby") {
		t.Fatalf("second coordinator while first leads: phase %s err %q, want standby", st.Phase, st.Err)
	}
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Fatalf("first coordinator: %v", err)
	}
	release.Do(func() { close(hold) })
	select {
	case err := <-done2:
		if err != nil {
			t.Fatalf("second coordinator: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("second coordinator did not finish the job")
	}
	if st := second.Status(); st.Phase != coordinator.PhaseDone || st.Step != 4 || st.Generation < 2 {
		t.Errorf("second coordinator ended with %+v, want done at step 4 in generation ≥ 2", st)
	}
	if n := len(readLosses(t, runDir)); n != 4 {
		t.Errorf("%d metrics lines, want 4", n)
	}
}
