package allreduce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// TestHelperRank is not a test: TestKillProcess runs the test binary with
// ALLREDUCE_HELPER_RANK set to make it one rank of a ring in its own
// process. It all-reduces in a loop, printing "done <k>" after operation k,
// until an operation fails, then prints "err <message>" and exits.
func TestHelperRank(t *testing.T) {
	rankStr := os.Getenv("ALLREDUCE_HELPER_RANK")
	if rankStr == "" {
		t.Skip("helper process for TestKillProcess")
	}
	rank, _ := strconv.Atoi(rankStr)
	peers := strings.Split(os.Getenv("ALLREDUCE_HELPER_PEERS"), ",")
	lis, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Printf("err listener: %v\n", err)
		os.Exit(0)
	}
	tr := NewGRPCTransport()
	srv := grpc.NewServer(ServerOptions()...)
	tr.Register(srv)
	go srv.Serve(lis)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := New(ctx, tr, Config{Generation: 1, Rank: rank, WorldSize: len(peers), Peers: peers, ChunkBytes: 4096})
	if err != nil {
		fmt.Printf("err %v\n", err)
		os.Exit(0)
	}
	buf := make([]float32, 1<<18)
	for k := 0; ; k++ {
		if err := r.AllReduce(ctx, buf); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Printf("err deadline: %v\n", err)
			} else {
				fmt.Printf("err %v\n", err)
			}
			os.Exit(0)
		}
		fmt.Printf("done %d\n", k)
	}
}

// TestKillProcess runs each rank in its own process, kills one with
// SIGKILL between operations that follow each other without pause, and
// checks that every other rank reports an error of its own (not its
// deadline).
func TestKillProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const w, victim = 3, 1
	files := make([]*os.File, w)
	addrs := make([]string, w)
	for r := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[r] = lis.Addr().String()
		if files[r], err = lis.(*net.TCPListener).File(); err != nil {
			t.Fatal(err)
		}
		lis.Close()
	}
	cmds := make([]*exec.Cmd, w)
	lines := make([]chan string, w)
	for r := range w {
		c := exec.Command(os.Args[0], "-test.run=^TestHelperRank$", "-test.v=false")
		c.Env = append(os.Environ(), "ALLREDUCE_HELPER_RANK="+strconv.Itoa(r), "ALLREDUCE_HELPER_PEERS="+strings.Join(addrs, ","))
		c.ExtraFiles = []*os.File{files[r]}
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		files[r].Close()
		cmds[r] = c
		lines[r] = make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines[r] <- sc.Text()
			}
			close(lines[r])
		}()
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	deadline := time.After(90 * time.Second)
	// Wait until every rank has finished an operation: the ring runs.
	for r := range w {
		for ok := false; !ok; {
			select {
			case l, open := <-lines[r]:
				if !open || strings.HasPrefix(l, "err") {
					t.Fatalf("rank %d before the kill: %q", r, l)
				}
				ok = strings.HasPrefix(l, "done")
			case <-deadline:
				t.Fatalf("rank %d never completed an operation", r)
			}
		}
	}
	if err := cmds[victim].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for r := range w {
		if r == victim {
			continue
		}
		var last string
		for l := range lines[r] {
			last = l
		}
		if !strings.HasPrefix(last, "err") {
			t.Fatalf("rank %d ended with %q, want an error", r, last)
		}
		if strings.HasPrefix(last, "err deadline") {
			t.Fatalf("rank %d ran into its deadline instead of noticing the dead peer: %q", r, last)
		}
		t.Logf("rank %d: %s", r, last)
	}
}
