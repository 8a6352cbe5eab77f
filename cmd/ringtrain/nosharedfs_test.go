package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsCluster runs every process in a mount namespace of its own (unshare
// -m, as root) in which one directory, view, is a private tmpfs holding
// only that process's files: its own copy of the data at view/data, and
// for the coordinator its run dir at view/run. The job names view/data; no
// process can see another's files.
type nsCluster struct {
	*harness
	view string
}

func (c *nsCluster) wrap(src string, withRun bool, args []string) []string {
	script := fmt.Sprintf("mount -t tmpfs tmpfs %[1]s && mkdir -p %[1]s/data %[1]s/run && mount --bind %[2]s/data %[1]s/data", c.view, src)
	if withRun {
		script += fmt.Sprintf(" && mount --bind %[2]s/run %[1]s/run", c.view, src)
	}
	script += ` && exec "$0" "$@"`
	return append([]string{"-m", "--propagation", "private", "sh", "-c", script, clusterBinary(c.t)}, args...)
}

func (c *nsCluster) startCoordinator(src string) *proc {
	addr := freeAddr(c.t)
	p := startCommand(c.t, fmt.Sprintf("coordinator %d", len(c.coords)), nil, "unshare", c.wrap(src, true, []string{"coordinator",
		"--etcd", c.etcdURL, "--listen", addr, "--job", c.job, "--run-dir", c.view + "/run",
		"--metrics-listen", "", "--settle", "300ms", "--ttl", "2s"})...)
	c.coords = append(c.coords, p)
	c.coordAddrs = append(c.coordAddrs, addr)
	return p
}

func (c *nsCluster) startWorker(name, src string) *proc {
	p := startCommand(c.t, "worker "+name, nil, "unshare", c.wrap(src, false, []string{"worker", "--etcd", c.etcdURL,
		"--listen", "127.0.0.1:0", "--name", name, "--ttl", "2s", "--threads", "1", "--exit-when-done"})...)
	c.mu.Lock()
	c.workers[name] = p
	c.mu.Unlock()
	return p
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// No shared filesystem: coordinator and workers in separate directories
// that cannot see each other's files. The job finishes with its
// checkpoints only on the coordinator's side; after a graceful stop and
// every worker gone, new workers resume from the checkpoint the
// coordinator streams them; a worker whose copy of a shard differs is
// refused, the shard named.
func TestNoSharedFilesystem(t *testing.T) {
	skipShort(t)
	if os.Geteuid() != 0 || exec.Command("unshare", "-m", "--propagation", "private", "true").Run() != nil {
		t.Skip("needs root and unshare -m (mount namespaces): the no-shared-filesystem test is skipped")
	}
	base := t.TempDir()
	view := filepath.Join(base, "view")
	if err := os.MkdirAll(view, 0o755); err != nil {
		t.Fatal(err)
	}
	data := scenarioData(t)
	for _, who := range []string{"c", "w0", "w1", "w2", "w3", "bad"} {
		copyDir(t, data, filepath.Join(base, who, "data"))
		os.MkdirAll(filepath.Join(base, who, "run"), 0o755)
	}
	// The bad worker's copy of the training shard differs in one token.
	bad := filepath.Join(base, "bad", "data", "train_000000.bin")
	b, _ := os.ReadFile(bad)
	b[len(b)-1] ^= 1
	os.WriteFile(bad, b, 0o644)

	sj := scenarioJob{steps: 400, wmin: 2, wmax: 2}
	job := sj.write(t, view+"/data")
	// every 100 steps a checkpoint
	jb, _ := os.ReadFile(job)
	os.WriteFile(job, []byte(strings.Replace(string(jb), "checkpoint: {every: 0", "checkpoint: {every: 100", 1)), 0o644)
	c := &nsCluster{harness: newHarness(t, job), view: view}

	coord := c.startCoordinator(filepath.Join(base, "c"))
	c.startWorker("w0", filepath.Join(base, "w0"))
	c.startWorker("w1", filepath.Join(base, "w1"))
	c.runDir = filepath.Join(base, "c", "run") // where the coordinator's run dir really is
	c.waitStep(150, time.Minute)

	// The bad copy is refused, naming the shard.
	bp := c.startWorker("bad", filepath.Join(base, "bad"))
	if err := bp.wait(t, 30*time.Second); err == nil || !strings.Contains(bp.out.String(), "train_000000.bin") {
		t.Errorf("worker with a different shard: %v\n%s", err, bp.out.String())
	}
	t.Logf("refused: %s", lastLine(bp.out.String()))

	// Graceful stop, every worker gone: the run is only on the coordinator's side.
	sendSignal(t, coord, syscall.SIGTERM)
	if err := coord.wait(t, 30*time.Second); err != nil {
		t.Fatalf("coordinator after SIGTERM: %v", err)
	}
	for _, n := range []string{"w0", "w1"} {
		c.workers[n].cmd.Process.Kill()
		c.workers[n].wait(t, 10*time.Second)
	}
	for _, who := range []string{"w0", "w1"} {
		if ents, _ := os.ReadDir(filepath.Join(base, who, "run")); len(ents) != 0 {
			t.Errorf("worker %s wrote into its own run dir: %v", who, ents)
		}
	}
	// Cold restart: fresh workers get the newest checkpoint from the coordinator.
	coord = c.startCoordinator(filepath.Join(base, "c"))
	c.startWorker("w2", filepath.Join(base, "w2"))
	c.startWorker("w3", filepath.Join(base, "w3"))
	c.waitDone(coord, 2*time.Minute)
	loaded := false
	for _, e := range c.history().Events {
		if e.Event == "healed" && strings.Contains(e.Detail, "from the checkpoint") {
			loaded = true
			t.Logf("cold restart: %s in %.2f s", e.Detail, e.Seconds)
		}
	}
	if !loaded {
		t.Error("no worker loaded the checkpoint on the cold restart")
	}
	stepLossesOf(t, c.history(), sj.steps)
	if _, err := os.Stat(filepath.Join(base, "c", "run", "checkpoints", "step_00000400", "COMMIT")); err != nil {
		t.Errorf("final checkpoint on the coordinator's side: %v", err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
