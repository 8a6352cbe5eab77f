package allreduce_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/allreduce/allreducetest"
)

// TestHelperRank is not a test: TestKillProcess runs the test binary with
// ALLREDUCE_HELPER_RANK set to make it one rank of a ring in its own
// process (allreducetest.Child).
func TestHelperRank(t *testing.T) {
	rankStr := os.Getenv("ALLREDUCE_HELPER_RANK")
	if rankStr == "" {
		t.Skip("helper process for TestKillProcess")
	}
	rank, _ := strconv.Atoi(rankStr)
	peers := strings.Split(os.Getenv("ALLREDUCE_HELPER_PEERS"), ",")
	lis, err := allreducetest.ListenerFD3()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = allreducetest.Child(ctx, helperConfig, rank, peers, lis, os.Stdin, os.Stdout)
	}
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

var helperConfig = allreducetest.Config{Workers: 3, Elems: 1 << 18, ChunkBytes: 4096}

// TestKillProcess runs each rank in its own process, kills one with
// SIGKILL while operations follow each other without pause, and checks
// that every other rank reports an error of its own (not its deadline).
func TestKillProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const victim = 1
	procs, err := allreducetest.Processes(helperConfig, func(rank int, peers []string) *exec.Cmd {
		c := exec.Command(os.Args[0], "-test.run=^TestHelperRank$", "-test.v=false")
		c.Env = append(os.Environ(), "ALLREDUCE_HELPER_RANK="+strconv.Itoa(rank), "ALLREDUCE_HELPER_PEERS="+strings.Join(peers, ","))
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for r := range helperConfig.Workers {
			procs.Kill(r)
		}
		procs.Close()
	})
	for r := range helperConfig.Workers {
		if err := procs.Send(r, "loop"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(90 * time.Second)
	// Wait until every rank has finished an operation: the ring runs.
	for r := range helperConfig.Workers {
		for ok := false; !ok; {
			select {
			case l, open := <-procs.Lines(r):
				if !open || strings.HasPrefix(l, "err") {
					t.Fatalf("rank %d before the kill: %q", r, l)
				}
				ok = strings.HasPrefix(l, "done")
			case <-deadline:
				t.Fatalf("rank %d never completed an operation", r)
			}
		}
	}
	if err := procs.Kill(victim); err != nil {
		t.Fatal(err)
	}
	for r := range helperConfig.Workers {
		if r == victim {
			continue
		}
		var last string
		for l := range procs.Lines(r) {
			if !strings.HasPrefix(l, "done") {
				last = l
				break
			}
		}
		if !strings.HasPrefix(last, "err") {
			t.Fatalf("rank %d ended with %q, want an error", r, last)
		}
		if allreducetest.IsDeadline(last) {
			t.Fatalf("rank %d ran into its deadline instead of noticing the dead peer: %q", r, last)
		}
		t.Logf("rank %d: %s", r, last)
	}
}
