package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/shard"
)

// TestCompose runs deploy/compose.yaml on the Docker engine, when there is
// one: up with three workers, training; `docker kill` of a worker, training
// goes on with two; `--scale worker=3` brings one back into the job; down.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the image and runs the compose cluster")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine here (docker info failed): the compose test is skipped")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run(t, root, nil, "./deploy/build.sh")
	t.Logf("image built in %.1f s", time.Since(start).Seconds())

	work := t.TempDir()
	writeData(t, filepath.Join(work, "data"))
	job := `name: compose-test
model: {vocab_size: 64, context_length: 32, d_model: 64, num_layers: 2, num_heads: 4, d_ff: 128}
data: {train: "/work/data/train_*.bin", val: "/work/data/val_*.bin", order: sequential}
train: {global_batch: 24, micro_batch: 4, max_steps: 1000000, lr: 1.0e-3, min_lr: 1.0e-4, warmup: 5}
eval: {every: 0}
checkpoint: {every: 0, keep: 1}
workers: {min: 1, max: 3}
`
	if err := os.WriteFile(filepath.Join(work, "job.yaml"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	project := "ringtraintest" + hex.EncodeToString(rnd[:])
	grpcPort, metricsPort := freePort(t), freePort(t)
	env := []string{"COMPOSE_PROJECT_NAME=" + project, "RINGTRAIN_WORK=" + work,
		"RINGTRAIN_GRPC_PORT=" + grpcPort, "RINGTRAIN_METRICS_PORT=" + metricsPort}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := composeCmd(root, env, "logs", "--no-color", "--tail", "40").CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		composeCmd(root, env, "down", "-v", "--remove-orphans").Run()
	})
	t0 := time.Now()
	run(t, root, env, "./deploy/compose.sh", "up", "-d", "--scale", "worker=3")
	addr := "127.0.0.1:" + grpcPort
	st := waitStatus(t, addr, 2*time.Minute, func(st *pb.JobStatusResponse) bool { return st.GetWorldSize() == 3 && st.GetStep() > 20 })
	t.Logf("up: training with 3 workers %.1f s after `up`", time.Since(t0).Seconds())

	// docker kill one worker container: the others go on.
	ids := strings.Fields(string(output(t, root, nil, "docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+project,
		"--filter", "label=com.docker.compose.service=worker")))
	if len(ids) != 3 {
		t.Fatalf("%d worker containers, want 3", len(ids))
	}
	before := st.GetStep()
	t1 := time.Now()
	run(t, root, nil, "docker", "kill", ids[0])
	st = waitStatus(t, addr, time.Minute, func(st *pb.JobStatusResponse) bool {
		return st.GetWorldSize() == 2 && st.GetPhase() == "running" && st.GetStep() > before+5
	})
	t.Logf("killed a worker: training with 2 %.2f s later (step %d → %d)", time.Since(t1).Seconds(), before, st.GetStep())

	// --scale worker=3 brings one back.
	t2 := time.Now()
	run(t, root, env, "./deploy/compose.sh", "up", "-d", "--scale", "worker=3")
	before = st.GetStep()
	st = waitStatus(t, addr, time.Minute, func(st *pb.JobStatusResponse) bool {
		return st.GetWorldSize() == 3 && st.GetStep() > before+5
	})
	t.Logf("--scale worker=3: training with 3 again %.2f s later (step %d)", time.Since(t2).Seconds(), st.GetStep())

	// From the host, the status command sees the job.
	bin := filepath.Join(t.TempDir(), "ringtrain")
	run(t, root, nil, "go", "build", "-o", bin, "./cmd/ringtrain")
	out := output(t, root, nil, bin, "status", "--coordinator", addr)
	if !strings.Contains(string(out), "compose-test") || !strings.Contains(string(out), "running") {
		t.Errorf("ringtrain status from the host:\n%s", out)
	}
	t3 := time.Now()
	run(t, root, env, "./deploy/compose.sh", "down", "-v", "--remove-orphans")
	t.Logf("down in %.1f s; whole test %.1f s", time.Since(t3).Seconds(), time.Since(start).Seconds())
}

func composeCmd(root string, env []string, args ...string) *exec.Cmd {
	c := exec.Command("./deploy/compose.sh", args...)
	c.Dir = root
	c.Env = append(os.Environ(), env...)
	return c
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func output(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// waitStatus polls the coordinator's status until ok holds.
func waitStatus(t *testing.T, addr string, d time.Duration, ok func(*pb.JobStatusResponse) bool) *pb.JobStatusResponse {
	t.Helper()
	deadline := time.Now().Add(d)
	var last *pb.JobStatusResponse
	for time.Now().Before(deadline) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := pb.NewCoordinatorClient(cc).JobStatus(ctx, &pb.JobStatusRequest{})
			cancel()
			cc.Close()
			if err == nil {
				last = st
				if ok(st) {
					return st
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("status did not get there within %s; last: %v", d, last)
	return nil
}

// writeData writes small train and val shards of a learnable pattern.
func writeData(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"train_000000.bin", 30000}, {"val_000000.bin", 4000}} {
		toks := make([]uint16, s.n)
		for i := range toks {
			toks[i] = uint16((i*7 + i/13) % 64)
		}
		if err := shard.WriteFile(filepath.Join(dir, s.name), toks); err != nil {
			t.Fatal(err)
		}
	}
}
