package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
)

var benchAllreduceFlags struct {
	workers int
	bytes   string
	iters   int
	warmup  int
	chunk   string
}

var benchAllreduceCmd = &cobra.Command{
	Use:   "allreduce",
	Short: "Measure ring all-reduce bandwidth over real gRPC on loopback",
	Long: `Runs --workers ranks of a ring all-reduce (mean of float32) in this process,
each with its own gRPC server on 127.0.0.1, talking through real loopback TCP
exactly as workers do, and times --iters all-reduces of --bytes each after
--warmup untimed ones. SIZE accepts plain bytes or a unit: 64MiB, 64MB, 512KiB.
Progress goes to stderr; the last line on stdout is
  algbw_GBps=<float> busbw_GBps=<float>
from the median iteration: algbw = bytes / time, busbw = algbw·2(n−1)/n
(GB = 1e9 bytes; nccl-tests conventions).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := benchAllreduceFlags
		out := cmd.OutOrStdout()
		size, err := parseSize(f.bytes)
		if err != nil {
			return fmt.Errorf("--bytes: %w", err)
		}
		if size < 4 || size%4 != 0 {
			return fmt.Errorf("--bytes %s: must be a positive multiple of 4 (float32 elements)", f.bytes)
		}
		chunk, err := parseSize(f.chunk)
		if err != nil {
			return fmt.Errorf("--chunk: %w", err)
		}
		switch {
		case f.workers < 1:
			return fmt.Errorf("--workers %d: must be at least 1", f.workers)
		case f.iters < 1:
			return fmt.Errorf("--iters %d: must be at least 1", f.iters)
		case f.warmup < 0:
			return fmt.Errorf("--warmup %d: must not be negative", f.warmup)
		case chunk < 64:
			return fmt.Errorf("--chunk %s: must be at least 64 bytes", f.chunk)
		}
		w, n := f.workers, int(size/4)

		rings, stop, err := loopbackRing(cmd.Context(), w, int(chunk))
		if err != nil {
			return err
		}
		defer stop()

		bufs := make([][]float32, w)
		for r := range bufs {
			bufs[r] = make([]float32, n)
			for i := range bufs[r] {
				bufs[r][i] = float32(r + 1)
			}
		}
		ctx := cmd.Context()
		iter := func() (time.Duration, error) {
			errs := make([]error, w)
			var wg sync.WaitGroup
			start := time.Now()
			for r := range w {
				wg.Go(func() { errs[r] = rings[r].AllReduce(ctx, bufs[r]) })
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

		fmt.Fprintf(out, "ring all-reduce: %d workers over gRPC on 127.0.0.1, %s (%d float32), chunk %s, %d warm-up + %d timed\n",
			w, f.bytes, n, f.chunk, f.warmup, f.iters)
		bar := progressbar.NewOptions(f.warmup+f.iters,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("bench allreduce"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("op"),
			progressbar.OptionClearOnFinish(),
		)
		for i := 0; i < f.warmup; i++ {
			if _, err := iter(); err != nil {
				return err
			}
			bar.Add(1)
		}
		times := make([]time.Duration, f.iters)
		cpu0 := cpuTime()
		for i := range times {
			if times[i], err = iter(); err != nil {
				return err
			}
			bar.Add(1)
		}
		cpu := (cpuTime() - cpu0) / time.Duration(f.iters)
		bar.Finish()

		// Every rank must hold the mean of 1 … W (exact in float32 for
		// these small integers, up to the rounding of 1/W).
		want := float64(w+1) / 2
		for r := range w {
			for _, i := range []int{0, n / 2, n - 1} {
				if got := float64(bufs[r][i]); math.Abs(got-want) > 1e-5*want {
					return fmt.Errorf("rank %d element %d: %v, want %v: the all-reduce is wrong", r, i, got, want)
				}
			}
		}

		slices.Sort(times)
		med := times[len(times)/2]
		if len(times)%2 == 0 {
			med = (times[len(times)/2-1] + times[len(times)/2]) / 2
		}
		bw := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
		factor := 2 * float64(w-1) / float64(w)
		fmt.Fprintf(out, "time per all-reduce: median %.2f ms, min %.2f ms, max %.2f ms; algbw best %.3f GB/s; process CPU %.2f ms per all-reduce (%.2f cores)\n",
			ms(med), ms(times[0]), ms(times[len(times)-1]), bw(times[0]), ms(cpu), float64(cpu)/float64(med))
		fmt.Fprintf(out, "algbw_GBps=%.3f busbw_GBps=%.3f\n", bw(med), bw(med)*factor)
		return nil
	},
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopbackRing starts w ring members in this process, each with its own
// gRPC server on an ephemeral 127.0.0.1 port, and connects them.
func loopbackRing(ctx context.Context, w, chunk int) ([]*allreduce.Ring, func(), error) {
	servers := make([]*grpc.Server, w)
	trs := make([]*allreduce.GRPCTransport, w)
	addrs := make([]string, w)
	stopServers := func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}
	for r := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stopServers()
			return nil, nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
		}
		trs[r] = allreduce.NewGRPCTransport()
		servers[r] = grpc.NewServer(allreduce.ServerOptions()...)
		trs[r].Register(servers[r])
		go servers[r].Serve(lis)
		addrs[r] = lis.Addr().String()
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rings := make([]*allreduce.Ring, w)
	errs := make([]error, w)
	var wg sync.WaitGroup
	for r := range w {
		wg.Go(func() {
			rings[r], errs[r] = allreduce.New(cctx, trs[r], allreduce.Config{
				Generation: 1, Rank: r, WorldSize: w, Peers: addrs, ChunkBytes: chunk,
			})
		})
	}
	wg.Wait()
	stop := func() {
		for _, ring := range rings {
			if ring != nil {
				ring.Close()
			}
		}
		stopServers()
	}
	for r, err := range errs {
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return rings, stop, nil
}

// parseSize parses a byte count: plain digits, or a number with a unit —
// B, KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers of 1024), in any
// letter case.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"kb": 1e3, "mb": 1e6, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KB, MB, GB, KiB, MiB or GiB)", s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: not a size", s)
	}
	b := v * mult
	if b != math.Trunc(b) || b > 1<<50 {
		return 0, fmt.Errorf("%q: not a whole number of bytes", s)
	}
	return int64(b), nil
}

func init() {
	fl := benchAllreduceCmd.Flags()
	fl.IntVar(&benchAllreduceFlags.workers, "workers", 2, "ranks in the ring")
	fl.StringVar(&benchAllreduceFlags.bytes, "bytes", "64MiB", "size of the reduced buffer (float32), e.g. 64MiB, 64MB, 1048576")
	fl.IntVar(&benchAllreduceFlags.iters, "iters", 10, "timed all-reduces")
	fl.IntVar(&benchAllreduceFlags.warmup, "warmup", 2, "untimed all-reduces before timing")
	fl.StringVar(&benchAllreduceFlags.chunk, "chunk", "1MiB", "pipelined chunk size")
	benchCmd.AddCommand(benchAllreduceCmd)
}
