package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringtrain/ringtrain/checkpoint"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/runmetrics"
	"github.com/ringtrain/ringtrain/trainer"
)

// The recovery scenarios run the built binary as separate processes: an
// etcd process (so that it can be stopped and started again), coordinators
// and workers, one thread each. Every scenario checks what it must show:
// the completed steps redone, the seconds until training again, and the
// final weights against an uninterrupted run of the same world size
// (bitwise when W ends as it started and never changed, to float rounding
// when it changed on the way).

// scenarioJob is the job of the recovery scenarios: a small model whose
// steps take ~10 ms, with the final checkpoint only.
type scenarioJob struct {
	steps, wmin, wmax int
	dModel            int
	stall             string
}

func (sj scenarioJob) write(t *testing.T, data string) string {
	t.Helper()
	if sj.dModel == 0 {
		sj.dModel = 64
	}
	if sj.stall == "" {
		sj.stall = "60s"
	}
	src := fmt.Sprintf(`name: scenario
model: {vocab_size: 64, context_length: 32, d_model: %d, num_layers: 2, num_heads: 4, d_ff: %d}
data: {train: %q, val: %q, order: shuffled}
train: {global_batch: 24, micro_batch: 4, max_steps: %d, lr: 1.0e-2, min_lr: 1.0e-3, warmup: 5, seed: 11}
eval: {every: 100, sequences: 24}
checkpoint: {every: 0, keep: 2}
workers: {min: %d, max: %d, stall_timeout: %s}
`, sj.dModel, 2*sj.dModel, filepath.Join(data, "train_*.bin"), filepath.Join(data, "val_*.bin"), sj.steps, sj.wmin, sj.wmax, sj.stall)
	path := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// harness is one cluster of processes.
type harness struct {
	t                  *testing.T
	job, runDir        string
	etcdDir            string
	etcdURL, etcdPeer  string
	etcd               *proc
	coords             []*proc
	coordAddrs         []string
	mu                 sync.Mutex
	workers            map[string]*proc
	coordFlags, wflags []string
	wenv               []string // environment of every worker
}

func newHarness(t *testing.T, job string) *harness {
	t.Helper()
	h := &harness{t: t, job: job, runDir: t.TempDir(), etcdDir: filepath.Join(t.TempDir(), "etcd"), workers: map[string]*proc{}}
	h.etcdURL, h.etcdPeer = "http://"+freeAddr(t), "http://"+freeAddr(t)
	h.startEtcd()
	return h
}

func (h *harness) startEtcd() {
	h.etcd = startProc(h.t, "etcd", "etcd", "--data-dir", h.etcdDir, "--listen-client", h.etcdURL, "--listen-peer", h.etcdPeer)
	waitOutput(h.t, h.etcd, "etcd serving", 30*time.Second)
}

// startCoordinator starts a coordinator (a standby if one leads).
func (h *harness) startCoordinator() *proc {
	addr := freeAddr(h.t)
	name := fmt.Sprintf("coordinator %d", len(h.coords))
	args := append([]string{"coordinator", "--etcd", h.etcdURL, "--listen", addr, "--job", h.job, "--run-dir", h.runDir,
		"--metrics-listen", "", "--settle", "300ms", "--ttl", "2s"}, h.coordFlags...)
	p := startProc(h.t, name, args...)
	h.coords = append(h.coords, p)
	h.coordAddrs = append(h.coordAddrs, addr)
	return p
}

// startWorker starts worker name with extra environment variables.
func (h *harness) startWorker(name string, env ...string) *proc {
	args := append([]string{"worker", "--etcd", h.etcdURL, "--listen", "127.0.0.1:0", "--name", name,
		"--ttl", "2s", "--threads", "1", "--exit-when-done"}, h.wflags...)
	p := startProcEnv(h.t, "worker "+name, append(slices.Clip(h.wenv), env...), args...)
	h.mu.Lock()
	h.workers[name] = p
	h.mu.Unlock()
	return p
}

func (h *harness) startWorkers(names ...string) {
	for _, n := range names {
		h.startWorker(n)
	}
}

// status asks the coordinators in turn for the job's status (nil if none answers).
func (h *harness) status() *pb.JobStatusResponse {
	for _, addr := range h.coordAddrs {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := pb.NewCoordinatorClient(cc).JobStatus(ctx, &pb.JobStatusRequest{})
		cancel()
		cc.Close()
		if err == nil && !strings.HasPrefix(st.GetError(), "standby") {
			return st
		}
	}
	return nil
}

// waitStep waits until the history holds step lines up to at least n.
func (h *harness) waitStep(n int, d time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l, err := runmetrics.ReadFile(filepath.Join(h.runDir, "metrics.jsonl")); err == nil && len(l.Steps) > 0 && l.Steps[len(l.Steps)-1].Step >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("step %d not reached within %s; status %v", n, d, h.status())
}

// waitDone waits for the leading coordinator to exit 0 and the workers to exit.
func (h *harness) waitDone(coord *proc, d time.Duration) {
	h.t.Helper()
	if err := coord.wait(h.t, d); err != nil {
		h.t.Fatalf("%s: %v", coord.name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.workers {
		select {
		case err := <-w.done:
			w.done <- err
		case <-time.After(30 * time.Second):
			h.t.Errorf("%s did not exit after the job", w.name)
		}
	}
}

func (h *harness) history() *runmetrics.Log {
	h.t.Helper()
	l, err := runmetrics.ReadFile(filepath.Join(h.runDir, "metrics.jsonl"))
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

// recovered returns the "recovered" events after t0.
func (h *harness) recovered(t0 time.Time) []runmetrics.Event {
	var out []runmetrics.Event
	for _, e := range h.history().Events {
		if e.Event == "recovered" && e.Time.After(t0) {
			out = append(out, e)
		}
	}
	return out
}

// sendSignal sends sig to p.
func sendSignal(t *testing.T, p *proc, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// finalState hashes the tensors of the final checkpoint (weights and
// AdamW moments: the whole state).
func finalState(t *testing.T, runDir string, step int) string {
	t.Helper()
	dir := checkpoint.Dir(runDir, int64(step))
	if err := checkpoint.Verify(dir); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, name := range []string{trainer.ModelFile, trainer.OptimizerFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(h, f)
		f.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stepLossesOf returns the loss of every step of the history, checking
// that each step is there once.
func stepLossesOf(t *testing.T, l *runmetrics.Log, steps int) []float64 {
	t.Helper()
	out := make([]float64, steps)
	seen := make([]bool, steps)
	for _, s := range l.Steps {
		if s.Step < 0 || s.Step >= steps || seen[s.Step] {
			t.Fatalf("step %d twice or out of range", s.Step)
		}
		seen[s.Step], out[s.Step] = true, s.Loss
	}
	for i, ok := range seen {
		if !ok {
			var near []string
			for _, s := range l.Steps {
				if s.Step >= i-3 && s.Step <= i+3 {
					near = append(near, fmt.Sprintf("%d@%s", s.Step, s.Time.Format("15:04:05.000")))
				}
			}
			t.Fatalf("no metrics line for step %d (lines near it: %v)", i, near)
		}
	}
	return out
}

// reference is an uninterrupted run: its final state hash and losses.
type reference struct {
	state  string
	losses []float64
}

var references sync.Map // key → *reference

// referenceRun runs the job uninterrupted with w workers (once per test
// binary and key).
func referenceRun(t *testing.T, data string, sj scenarioJob, w int) *reference {
	t.Helper()
	key := fmt.Sprint(sj, w)
	if r, ok := references.Load(key); ok {
		return r.(*reference)
	}
	sj.wmin, sj.wmax = w, w
	h := newHarness(t, sj.write(t, data))
	coord := h.startCoordinator()
	for i := range w {
		h.startWorker(fmt.Sprintf("r%d", i))
	}
	h.waitDone(coord, 3*time.Minute)
	r := &reference{state: finalState(t, h.runDir, sj.steps), losses: stepLossesOf(t, h.history(), sj.steps)}
	references.Store(key, r)
	return r
}

// compareLosses checks per-step losses against a reference: bitwise, or
// within rel when the world size changed on the way.
func compareLosses(t *testing.T, got, want []float64, rel float64) (worst float64) {
	t.Helper()
	for s := range want {
		d := math.Abs(got[s]-want[s]) / math.Abs(want[s])
		worst = max(worst, d)
		if d > rel {
			t.Errorf("step %d: loss %.9g, uninterrupted %.9g (rel %.2g > %.2g)", s, got[s], want[s], d, rel)
			return worst
		}
	}
	return worst
}

// scenarioResult is one row of the closing table, logged by each test.
type scenarioResult struct {
	name    string
	redone  int
	seconds float64
	equal   string
}

func (r scenarioResult) log(t *testing.T) {
	t.Logf("SCENARIO | %s | steps redone %d | training again after %.2f s | %s", r.name, r.redone, r.seconds, r.equal)
}

func scenarioData(t *testing.T) string {
	t.Helper()
	return clusterData(t)
}

func parseRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}
