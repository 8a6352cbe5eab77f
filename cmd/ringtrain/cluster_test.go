package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/embedetcd"
	"github.com/ringtrain/ringtrain/shard"
)

// The cluster tests run the real binary: an embedded etcd in the test, a
// coordinator process and worker processes talking gRPC over loopback.

var clusterBin struct {
	once sync.Once
	path string
	err  error
}

// clusterBinary builds ringtrain once per test run.
func clusterBinary(t *testing.T) string {
	t.Helper()
	clusterBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "ringtrain-bin-")
		if err != nil {
			clusterBin.err = err
			return
		}
		clusterBin.path = filepath.Join(dir, "ringtrain")
		out, err := exec.Command("go", "build", "-o", clusterBin.path, ".").CombinedOutput()
		if err != nil {
			clusterBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if clusterBin.err != nil {
		t.Fatal(clusterBin.err)
	}
	return clusterBin.path
}

// clusterData writes tiny train and val shards with a learnable pattern
// (mostly "next token = previous + 1") and returns their directory.
func clusterData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range []struct {
		name string
		n    int
		seed uint64
	}{{"train_000000.bin", 30000, 1}, {"val_000000.bin", 4000, 2}} {
		toks := make([]uint16, s.n)
		x := s.seed
		for i := range toks {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if x%4 == 0 || i == 0 {
				toks[i] = uint16(x % 64)
			} else {
				toks[i] = (toks[i-1] + 1) % 64
			}
		}
		if err := shard.WriteFile(filepath.Join(dir, s.name), toks); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// clusterJob writes a job file for a tiny model on the data in dataDir.
func clusterJob(t *testing.T, dataDir string, steps, every, dModel, wmin, wmax int) string {
	t.Helper()
	src := fmt.Sprintf(`name: tiny
model: {vocab_size: 64, context_length: 16, d_model: %d, num_layers: 2, num_heads: 4, d_ff: %d}
data: {train: %q, val: %q, order: sequential}
train: {global_batch: 24, micro_batch: 2, max_steps: %d, lr: 1.0e-2, min_lr: 1.0e-3, warmup: 2, seed: 7}
eval: {every: 5, sequences: 24}
checkpoint: {every: %d, keep: 2}
workers: {min: %d, max: %d}
`, dModel, 2*dModel, filepath.Join(dataDir, "train_*.bin"), filepath.Join(dataDir, "val_*.bin"), steps, every, wmin, wmax)
	path := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, name, nil, args...)
}

// startProcEnv is startProc with extra environment variables (KEY=VALUE).
func startProcEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return startCommand(t, name, env, clusterBinary(t), args...)
}

// startCommand starts path with args as a proc that the test's cleanup
// kills (and shows the output of, if the test failed).
func startCommand(t *testing.T, name string, env []string, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// wait waits for the process to exit within d and returns its error.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // let the cleanup see it
		return err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s; output:\n%s", p.name, d, p.out.String())
		return nil
	}
}

func clusterEtcd(t *testing.T) string {
	t.Helper()
	e, err := embedetcd.Start(embedetcd.Config{DataDir: filepath.Join(t.TempDir(), "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.ClientURL
}

// startCoordinator starts a coordinator process and returns its address.
func startCoordinator(t *testing.T, name, etcdURL, prefix, jobPath, runDir string) (string, *proc) {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, name, "coordinator", "--etcd", etcdURL, "--listen", addr, "--job", jobPath,
		"--run-dir", runDir, "--prefix", prefix, "--metrics-listen", "", "--settle", "100ms", "--ttl", "2s")
	return addr, p
}

// startWorkers starts w worker processes named w0, w1, ….
func startWorkers(t *testing.T, etcdURL, prefix string, w int) []*proc {
	t.Helper()
	var workers []*proc
	for i := range w {
		workers = append(workers, startProc(t, fmt.Sprintf("worker %d", i), "worker", "--etcd", etcdURL,
			"--listen", "127.0.0.1:0", "--name", fmt.Sprintf("w%d", i), "--prefix", prefix, "--ttl", "2s", "--exit-when-done"))
	}
	return workers
}

func readMetrics(t *testing.T, runDir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// stepLosses checks the metrics lines and returns the loss of each step.
func stepLosses(t *testing.T, runDir string, steps, world int) []float64 {
	t.Helper()
	var lines []map[string]any
	for _, l := range readMetrics(t, runDir) {
		if _, ok := l["event"]; !ok {
			lines = append(lines, l)
		}
	}
	if len(lines) != steps {
		t.Fatalf("%s: %d metrics lines, want %d", runDir, len(lines), steps)
	}
	losses := make([]float64, steps)
	for i, l := range lines {
		for _, k := range []string{"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "world_size", "time"} {
			if _, ok := l[k]; !ok {
				t.Errorf("metrics line %d has no %q: %v", i, k, l)
			}
		}
		if s := int(l["step"].(float64)); s != i {
			t.Errorf("metrics line %d is step %d", i, s)
		}
		if ws := int(l["world_size"].(float64)); ws != world {
			t.Errorf("metrics line %d: world_size %d, want %d", i, ws, world)
		}
		if _, ok := l["val_loss"]; ok != ((i+1)%5 == 0 || i+1 == steps) {
			t.Errorf("metrics line %d: val_loss present %v", i, ok)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(l["time"])); err != nil {
			t.Errorf("metrics line %d: time: %v", i, err)
		}
		losses[i] = l["loss"].(float64)
	}
	return losses
}

func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary and runs worker processes")
	}
	etcdURL := clusterEtcd(t)
	data := clusterData(t)
	const steps = 8
	losses := map[int][]float64{}
	for w := 1; w <= 4; w++ {
		t.Run(fmt.Sprintf("W=%d", w), func(t *testing.T) {
			runDir := t.TempDir()
			// workers.min = max = w: the job file allows 1..4.
			job := clusterJob(t, data, steps, 4, 32, w, w)
			prefix := fmt.Sprintf("/w%d", w)
			addr, coord := startCoordinator(t, "coordinator", etcdURL, prefix, job, runDir)
			var watch *proc
			if w == 2 {
				// Before any worker: the job waits, so status and watch
				// see it from its start.
				st := checkStatusJSON(t, addr, steps)
				if st["phase"] != "waiting" {
					t.Errorf("status before any worker: phase %v, want waiting", st["phase"])
				}
				watch = startProc(t, "watch", "watch", "--coordinator", addr, "--interval", "0s")
				waitOutput(t, watch, "waiting", 30*time.Second)
			}
			workers := startWorkers(t, etcdURL, prefix, w)
			if err := coord.wait(t, 60*time.Second); err != nil {
				t.Fatalf("coordinator: %v", err)
			}
			for _, wp := range workers {
				if err := wp.wait(t, 30*time.Second); err != nil {
					t.Errorf("%s: %v", wp.name, err)
				}
			}
			if watch != nil {
				if err := watch.wait(t, 10*time.Second); err != nil {
					t.Errorf("watch: %v", err)
				}
				if out := watch.out.String(); !strings.Contains(out, fmt.Sprintf("done at step %d", steps)) {
					t.Errorf("watch output has no final line:\n%s", out)
				}
			}
			losses[w] = stepLosses(t, runDir, steps, w)
			for _, s := range []int{4, steps} {
				if _, err := os.Stat(filepath.Join(checkpoint.Dir(runDir, int64(s)), "COMMIT")); err != nil {
					t.Errorf("checkpoint at step %d: %v", s, err)
				}
			}
		})
	}
	for w := 2; w <= 4; w++ {
		for s := range steps {
			a, b := losses[1][s], losses[w][s]
			if math.Abs(a-b) > 1e-5*math.Abs(a) {
				t.Errorf("step %d: W=%d loss %.7f, W=1 loss %.7f", s, w, b, a)
			}
		}
	}
	t.Logf("W=1 losses %v", losses[1])
	t.Logf("W=4 losses %v", losses[4])
}

// waitOutput waits until p printed want.
func waitOutput(t *testing.T, p *proc, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s:\n%s", p.name, want, d, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStatusJSON asks for the status while the job starts.
func checkStatusJSON(t *testing.T, addr string, steps int) map[string]any {
	t.Helper()
	var out []byte
	var err error
	for range 50 { // the coordinator process may not listen yet
		out, err = exec.Command(clusterBinary(t), "status", "--coordinator", addr, "--json", "--timeout", "2s").Output()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("status --json: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status --json output %q: %v", out, err)
	}
	for _, k := range []string{"phase", "step", "max_steps", "loss", "tokens_per_s", "workers"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json has no %q: %s", k, out)
		}
	}
	if ms := fmt.Sprint(st["max_steps"]); ms != fmt.Sprint(steps) {
		t.Errorf("status max_steps %s, want %d", ms, steps)
	}
	switch st["phase"] {
	case "waiting", "running", "checkpointing", "done":
	default:
		t.Errorf("status phase %v", st["phase"])
	}
	if ws, ok := st["workers"].([]any); ok {
		for _, w := range ws {
			m := w.(map[string]any)
			for _, k := range []string{"name", "rank", "address", "state", "step"} {
				if _, ok := m[k]; !ok {
					t.Errorf("status worker has no %q: %v", k, m)
				}
			}
		}
	}
	return st
}

func TestEtcdCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary")
	}
	client, peer := "http://"+freeAddr(t), "http://"+freeAddr(t)
	p := startProc(t, "etcd", "etcd", "--data-dir", filepath.Join(t.TempDir(), "etcd"), "--listen-client", client, "--listen-peer", peer)
	cli, err := newEtcdClient(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put through ringtrain etcd: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k: %v %v", resp, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("etcd after SIGTERM: %v", err)
	}
}
