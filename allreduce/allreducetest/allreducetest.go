// Package allreducetest runs the members of one ring generation over real
// gRPC on loopback, each with its own server built by
// allreduce.NewGRPCServer, as goroutines of this process (Local) or as
// child processes (Processes, with Child in the children), and drives
// them together: `ringtrain bench allreduce` measures with it, and the
// allreduce tests kill processes with it.
//
// Every rank reduces a buffer of Config.Elems float32 values that holds
// rank+1 everywhere, so the mean is (W+1)/2 on every rank (Check).
//
// A child reads one command per line on stdin and answers on stdout:
//
//	run        one all-reduce               → "ok"
//	loop       all-reduces until one fails  → "done <k>" after each, then "err <message>"
//	check      the buffer holds the mean    → "ok"
//	cpu        its CPU time in nanoseconds  → "ok <ns>"
//
// and "err <message>" for any failure; at the end of stdin it closes its
// ring and returns.
package allreducetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
)

// Config describes the ring and the buffer of every rank.
type Config struct {
	Workers    int
	Elems      int            // float32 values per rank
	ChunkBytes int            // 0: allreduce.DefaultChunkBytes
	Wire       allreduce.Wire // float32 wire format
	// ConnectTimeout bounds the ring's creation (default 30 s).
	ConnectTimeout time.Duration
}

func (c Config) ring(rank int, peers []string) allreduce.Config {
	return allreduce.Config{Generation: 1, Rank: rank, WorldSize: len(peers), Peers: peers, ChunkBytes: c.ChunkBytes, Wire: c.Wire}
}

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return 30 * time.Second
}

// Ranks is a ring driven as a whole.
type Ranks interface {
	// Run does one all-reduce on every rank and returns its wall time.
	Run() (time.Duration, error)
	// Check verifies that every rank holds the mean (W+1)/2.
	Check() error
	// CPU is the CPU time the ranks have used so far.
	CPU() (time.Duration, error)
	Close() error
}

// Buffer is rank r's input: r+1 everywhere.
func Buffer(rank, n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(rank + 1)
	}
	return b
}

// CheckBuffer verifies that b holds the mean of W ranks' Buffers.
func CheckBuffer(b []float32, workers int) error {
	want := float64(workers+1) / 2
	for _, i := range []int{0, len(b) / 2, len(b) - 1} {
		if i < 0 || i >= len(b) {
			continue
		}
		// The bf16 wire rounds to 2⁻⁸ relative; small integers and their
		// means are exact in float32.
		if got := float64(b[i]); math.Abs(got-want) > 4e-3*want {
			return fmt.Errorf("element %d = %v, want %v: the all-reduce is wrong", i, got, want)
		}
	}
	return nil
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serve starts a gRPC server for tr on lis; the returned function stops it.
func serve(tr *allreduce.GRPCTransport, lis net.Listener) func() {
	srv := allreduce.NewGRPCServer(tr)
	go srv.Serve(lis)
	return srv.Stop
}

// local are ranks running as goroutines of this process.
type local struct {
	ctx   context.Context
	cfg   Config
	rings []*allreduce.Ring
	bufs  [][]float32
	stops []func()
}

// Local starts cfg.Workers ranks as goroutines of this process, each with
// its own server on 127.0.0.1, and returns once the ring is connected.
func Local(ctx context.Context, cfg Config) (Ranks, error) {
	w := cfg.Workers
	l := &local{ctx: ctx, cfg: cfg, rings: make([]*allreduce.Ring, w), bufs: make([][]float32, w)}
	trs := make([]*allreduce.GRPCTransport, w)
	addrs := make([]string, w)
	for r := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
		}
		trs[r] = allreduce.NewGRPCTransport()
		l.stops = append(l.stops, serve(trs[r], lis))
		addrs[r] = lis.Addr().String()
		l.bufs[r] = Buffer(r, cfg.Elems)
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout())
	defer cancel()
	errs := make([]error, w)
	var wg sync.WaitGroup
	for r := range w {
		wg.Go(func() { l.rings[r], errs[r] = allreduce.New(cctx, trs[r], cfg.ring(r, addrs)) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return l, nil
}

func (l *local) Run() (time.Duration, error) {
	errs := make([]error, len(l.rings))
	var wg sync.WaitGroup
	start := time.Now()
	for r := range l.rings {
		wg.Go(func() { errs[r] = l.rings[r].AllReduce(l.ctx, l.bufs[r]) })
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

func (l *local) Check() error {
	for r, b := range l.bufs {
		if err := CheckBuffer(b, len(l.bufs)); err != nil {
			return fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return nil
}

func (l *local) CPU() (time.Duration, error) { return cpuTime(), nil }

func (l *local) Close() error {
	for _, r := range l.rings {
		if r != nil {
			r.Close()
		}
	}
	for _, stop := range l.stops {
		stop()
	}
	return nil
}

// Procs are ranks running in child processes.
type Procs struct {
	cmds  []*exec.Cmd
	in    []io.WriteCloser
	lines []chan string
}

var _ Ranks = (*Procs)(nil)

// Processes starts cfg.Workers child processes, command(rank, peers) each
// (a program that calls Child for that rank), hands each its listener on
// 127.0.0.1 as file descriptor 3, and returns once every child reports its
// ring connected.
func Processes(cfg Config, command func(rank int, peers []string) *exec.Cmd) (*Procs, error) {
	w := cfg.Workers
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
	p := &Procs{}
	for r := range w {
		c := command(r, addrs)
		c.ExtraFiles = []*os.File{files[r]}
		if c.Stderr == nil {
			c.Stderr = os.Stderr
		}
		stdin, err := c.StdinPipe()
		if err == nil {
			var stdout io.ReadCloser
			if stdout, err = c.StdoutPipe(); err == nil {
				err = c.Start()
				ch := make(chan string, 1024)
				go func() {
					sc := bufio.NewScanner(stdout)
					for sc.Scan() {
						ch <- sc.Text()
					}
					close(ch)
				}()
				p.lines = append(p.lines, ch)
			}
		}
		files[r].Close()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("start rank %d: %w", r, err)
		}
		p.cmds = append(p.cmds, c)
		p.in = append(p.in, stdin)
	}
	if _, err := p.collect(); err != nil { // each child says "ok" once connected
		p.Close()
		return nil, err
	}
	return p, nil
}

// Send writes one command line to rank's child.
func (p *Procs) Send(rank int, line string) error {
	if _, err := fmt.Fprintln(p.in[rank], line); err != nil {
		return fmt.Errorf("rank %d: %w", rank, err)
	}
	return nil
}

// Lines are the lines rank's child writes, closed when it exits.
func (p *Procs) Lines(rank int) <-chan string { return p.lines[rank] }

// Kill kills rank's child with SIGKILL.
func (p *Procs) Kill(rank int) error { return p.cmds[rank].Process.Kill() }

// do sends line to every child and collects one answer from each.
func (p *Procs) do(line string) ([]string, error) {
	for r := range p.in {
		if err := p.Send(r, line); err != nil {
			return nil, err
		}
	}
	return p.collect()
}

func (p *Procs) collect() ([]string, error) {
	res := make([]string, len(p.lines))
	var first error
	for r, ch := range p.lines {
		s, ok := <-ch
		switch {
		case !ok:
			first = firstErr(first, fmt.Errorf("rank %d exited", r))
		case strings.HasPrefix(s, "err "):
			first = firstErr(first, fmt.Errorf("rank %d: %s", r, strings.TrimPrefix(s, "err ")))
		default:
			res[r] = strings.TrimSpace(strings.TrimPrefix(s, "ok"))
		}
	}
	return res, first
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (p *Procs) Run() (time.Duration, error) {
	start := time.Now()
	_, err := p.do("run")
	return time.Since(start), err
}

func (p *Procs) Check() error {
	_, err := p.do("check")
	return err
}

func (p *Procs) CPU() (time.Duration, error) {
	res, err := p.do("cpu")
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

// Close ends every child's input (it closes its ring and exits) and waits
// for them, killing those that do not exit within 10 s.
func (p *Procs) Close() error {
	for _, in := range p.in {
		in.Close()
	}
	for _, c := range p.cmds {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
	return nil
}

// Child is one rank of Processes, in the child: it serves on lis (from
// file descriptor 3: ListenerFD3), connects its ring, says "ok" on out and
// answers the commands on in until in ends.
func Child(ctx context.Context, cfg Config, rank int, peers []string, lis net.Listener, in io.Reader, out io.Writer) error {
	tr := allreduce.NewGRPCTransport()
	stop := serve(tr, lis)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout())
	ring, err := allreduce.New(cctx, tr, cfg.ring(rank, peers))
	cancel()
	if err != nil {
		fmt.Fprintf(out, "err %s\n", oneLine(err))
		return err
	}
	defer ring.Close()
	buf := Buffer(rank, cfg.Elems)
	fmt.Fprintln(out, "ok")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		answer, err := "", error(nil)
		switch sc.Text() {
		case "run":
			err = ring.AllReduce(ctx, buf)
		case "loop":
			for k := 0; err == nil; k++ {
				if err = ring.AllReduce(ctx, buf); err == nil {
					fmt.Fprintf(out, "done %d\n", k)
				}
			}
		case "check":
			err = CheckBuffer(buf, len(peers))
		case "cpu":
			answer = " " + strconv.FormatInt(int64(cpuTime()), 10)
		default:
			err = fmt.Errorf("unknown command %q", sc.Text())
		}
		if err != nil {
			fmt.Fprintf(out, "err %s\n", oneLine(err))
			continue
		}
		fmt.Fprintf(out, "ok%s\n", answer)
	}
	return nil
}

// ListenerFD3 is the listener Processes hands a child.
func ListenerFD3() (net.Listener, error) {
	lis, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return nil, fmt.Errorf("listener from file descriptor 3: %w", err)
	}
	return lis, nil
}

// IsDeadline reports whether a child's error line is its context's deadline.
func IsDeadline(line string) bool {
	return strings.Contains(line, context.DeadlineExceeded.Error())
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
