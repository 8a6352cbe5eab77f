package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
)

// benchRanks is the set of ranks a bench allreduce run drives.
type benchRanks interface {
	// iter runs one all-reduce on every rank and returns its wall time.
	iter() (time.Duration, error)
	// check verifies that every rank holds want everywhere it looks.
	check(want float64) error
	// cpu is the CPU time the ranks have used so far.
	cpu() (time.Duration, error)
	close()
}

// localRanks are ranks running as goroutines of this process.
type localRanks struct {
	ctx   context.Context
	rings []*allreduce.Ring
	bufs  [][]float32
	stop  func()
}

func startLocalRanks(ctx context.Context, w, n, chunk int) (*localRanks, error) {
	lr := &localRanks{ctx: ctx, rings: make([]*allreduce.Ring, w), bufs: make([][]float32, w)}
	servers := make([]*grpc.Server, w)
	trs := make([]*allreduce.GRPCTransport, w)
	addrs := make([]string, w)
	lr.stop = func() {
		for _, ring := range lr.rings {
			if ring != nil {
				ring.Close()
			}
		}
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}
	for r := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lr.stop()
			return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
		}
		trs[r] = allreduce.NewGRPCTransport()
		servers[r] = grpc.NewServer(allreduce.ServerOptions()...)
		trs[r].Register(servers[r])
		go servers[r].Serve(lis)
		addrs[r] = lis.Addr().String()
		lr.bufs[r] = benchBuffer(r, n)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	errs := make([]error, w)
	var wg sync.WaitGroup
	for r := range w {
		wg.Go(func() {
			lr.rings[r], errs[r] = allreduce.New(cctx, trs[r], allreduce.Config{
				Generation: 1, Rank: r, WorldSize: w, Peers: addrs, ChunkBytes: chunk,
			})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			lr.stop()
			return nil, fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return lr, nil
}

// benchBuffer is rank r's input: r+1 everywhere.
func benchBuffer(r, n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(r + 1)
	}
	return b
}

func checkBuffer(b []float32, want float64) error {
	for _, i := range []int{0, len(b) / 2, len(b) - 1} {
		if got := float64(b[i]); math.Abs(got-want) > 1e-5*want {
			return fmt.Errorf("element %d = %v, want %v: the all-reduce is wrong", i, got, want)
		}
	}
	return nil
}

func (lr *localRanks) iter() (time.Duration, error) {
	errs := make([]error, len(lr.rings))
	var wg sync.WaitGroup
	start := time.Now()
	for r := range lr.rings {
		wg.Go(func() { errs[r] = lr.rings[r].AllReduce(lr.ctx, lr.bufs[r]) })
	}
	wg.Wait()
	el := time.Since(start)
	for r, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return el, nil
}

func (lr *localRanks) check(want float64) error {
	for r, b := range lr.bufs {
		if err := checkBuffer(b, want); err != nil {
			return fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return nil
}

func (lr *localRanks) cpu() (time.Duration, error) { return cpuTime(syscall.RUSAGE_SELF), nil }
func (lr *localRanks) close()                      { lr.stop() }

// cpuTime is the user+system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childRanks are ranks running in child processes (this binary with the
// hidden --child-rank flag). The parent opens each child's listener and
// hands it over as file descriptor 3, then drives the children with one
// command line each on stdin: run, check <value>, cpu; each answers one
// line on stdout: "ok [value]" or "err <message>".
type childRanks struct {
	cmds []*exec.Cmd
	in   []*os.File
	out  []*bufio.Reader
}

func startChildRanks(cmd *cobra.Command, w int) (*childRanks, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	cr := &childRanks{}
	files := make([]*os.File, w)
	addrs := make([]string, w)
	for r := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
		}
		addrs[r] = lis.Addr().String()
		files[r], err = lis.(*net.TCPListener).File()
		lis.Close()
		if err != nil {
			return nil, fmt.Errorf("listener file: %w", err)
		}
	}
	f := benchAllreduceFlags
	for r := range w {
		c := exec.Command(self, "bench", "allreduce", "--bytes", f.bytes, "--chunk", f.chunk,
			"--child-rank", strconv.Itoa(r), "--child-peers", strings.Join(addrs, ","), "--log-level", logLevel)
		c.ExtraFiles = []*os.File{files[r]}
		c.Stderr = os.Stderr
		stdin, err := c.StdinPipe()
		if err != nil {
			cr.close()
			return nil, err
		}
		stdout, err := c.StdoutPipe()
		if err != nil {
			cr.close()
			return nil, err
		}
		if err := c.Start(); err != nil {
			cr.close()
			return nil, fmt.Errorf("start rank %d: %w", r, err)
		}
		files[r].Close()
		cr.cmds = append(cr.cmds, c)
		cr.in = append(cr.in, stdin.(*os.File))
		cr.out = append(cr.out, bufio.NewReader(stdout))
	}
	if _, err := cr.all(""); err != nil { // each child says "ok" once connected
		cr.close()
		return nil, err
	}
	return cr, nil
}

// all sends line (unless empty) to every child and collects their answers.
func (cr *childRanks) all(line string) ([]string, error) {
	if line != "" {
		for r, in := range cr.in {
			if _, err := fmt.Fprintln(in, line); err != nil {
				return nil, fmt.Errorf("rank %d: %w", r, err)
			}
		}
	}
	res := make([]string, len(cr.out))
	for r, out := range cr.out {
		s, err := out.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("rank %d exited: %w", r, err)
		}
		s = strings.TrimSpace(s)
		if msg, ok := strings.CutPrefix(s, "err "); ok {
			return nil, fmt.Errorf("rank %d: %s", r, msg)
		}
		res[r] = strings.TrimSpace(strings.TrimPrefix(s, "ok"))
	}
	return res, nil
}

func (cr *childRanks) iter() (time.Duration, error) {
	start := time.Now()
	_, err := cr.all("run")
	return time.Since(start), err
}

func (cr *childRanks) check(want float64) error {
	_, err := cr.all("check " + strconv.FormatFloat(want, 'g', -1, 64))
	return err
}

func (cr *childRanks) cpu() (time.Duration, error) {
	res, err := cr.all("cpu")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, s := range res {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu answer %q", s)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

func (cr *childRanks) close() {
	for _, in := range cr.in {
		in.Close() // end of input: the child closes its ring and exits
	}
	for _, c := range cr.cmds {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// benchAllreduceChild is one rank of a --procs benchmark.
func benchAllreduceChild(cmd *cobra.Command, rank int, peers []string, n, chunk int) error {
	out := cmd.OutOrStdout()
	lis, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("rank %d: listener from fd 3: %w", rank, err)
	}
	tr := allreduce.NewGRPCTransport()
	srv := grpc.NewServer(allreduce.ServerOptions()...)
	tr.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()
	ctx := cmd.Context()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ring, err := allreduce.New(cctx, tr, allreduce.Config{
		Generation: 1, Rank: rank, WorldSize: len(peers), Peers: peers, ChunkBytes: chunk,
	})
	cancel()
	if err != nil {
		fmt.Fprintf(out, "err %v\n", err)
		return err
	}
	defer ring.Close()
	buf := benchBuffer(rank, n)
	fmt.Fprintln(out, "ok")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		var err error
		answer := ""
		switch verb {
		case "run":
			err = ring.AllReduce(ctx, buf)
		case "check":
			var want float64
			if want, err = strconv.ParseFloat(arg, 64); err == nil {
				err = checkBuffer(buf, want)
			}
		case "cpu":
			answer = " " + strconv.FormatInt(int64(cpuTime(syscall.RUSAGE_SELF)), 10)
		default:
			err = fmt.Errorf("unknown command %q", verb)
		}
		if err != nil {
			fmt.Fprintf(out, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok%s\n", answer)
	}
	return nil
}
