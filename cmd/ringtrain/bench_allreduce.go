package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/allreduce/allreducetest"
)

var benchAllreduceFlags struct {
	workers int
	bytes   string
	iters   int
	warmup  int
	chunk   string
	wire    string
	procs   bool

	childRank  int
	childPeers string
}

var benchAllreduceCmd = &cobra.Command{
	Use:   "allreduce",
	Short: "Measure ring all-reduce bandwidth over real gRPC on loopback",
	Long: `Runs --workers ranks of a ring all-reduce (mean of float32) as goroutines of
this process (or, with --procs, as child processes), each with its own gRPC
server on 127.0.0.1 built as workers build theirs, talking through real
loopback TCP exactly as workers do, and times --iters all-reduces of --bytes
each after --warmup untimed ones. SIZE accepts plain bytes or a unit: 64MiB,
64MB, 512KiB. --wire bf16 sends the float32 gradients as bfloat16 (added in
float32 at every hop). The results are checked, and the CPU time per
all-reduce (all ranks) is reported too. Progress goes to stderr; the last
line on stdout is
  algbw_GBps=<float> busbw_GBps=<float>
from the median iteration: algbw = bytes / time, busbw = algbw·2(n−1)/n
(GB = 1e9 bytes; nccl-tests conventions), bytes being those of the float32
buffer whatever the wire carries.`,
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
		wire, err := allreduce.ParseWire(f.wire)
		if err != nil {
			return fmt.Errorf("--wire: %w", err)
		}
		w, n := f.workers, int(size/4)
		cfg := allreducetest.Config{Workers: w, Elems: n, ChunkBytes: int(chunk), Wire: wire}
		if f.childRank >= 0 {
			peers := strings.Split(f.childPeers, ",")
			cfg.Workers = len(peers)
			lis, err := allreducetest.ListenerFD3()
			if err != nil {
				return err
			}
			return allreducetest.Child(cmd.Context(), cfg, f.childRank, peers, lis, os.Stdin, cmd.OutOrStdout())
		}

		var ranks allreducetest.Ranks
		if f.procs {
			ranks, err = allreducetest.Processes(cfg, benchChildCommand)
		} else {
			ranks, err = allreducetest.Local(cmd.Context(), cfg)
		}
		if err != nil {
			return err
		}
		defer ranks.Close()

		where := "goroutines of this process"
		if f.procs {
			where = "child processes"
		}
		fmt.Fprintf(out, "ring all-reduce: %d workers (%s) over gRPC on 127.0.0.1, %s (%d float32), %s wire, chunk %s, %d warm-up + %d timed\n",
			w, where, f.bytes, n, wire, f.chunk, f.warmup, f.iters)
		step, finish := counter(os.Stderr, "bench allreduce", f.warmup+f.iters)
		for i := 0; i < f.warmup; i++ {
			if _, err := ranks.Run(); err != nil {
				return err
			}
			step(1)
		}
		times := make([]time.Duration, f.iters)
		cpu0, err := ranks.CPU()
		if err != nil {
			return err
		}
		for i := range times {
			if times[i], err = ranks.Run(); err != nil {
				return err
			}
			step(1)
		}
		cpu1, err := ranks.CPU()
		if err != nil {
			return err
		}
		cpu := (cpu1 - cpu0) / time.Duration(f.iters)
		finish()

		// Every rank must hold the mean of 1 … W.
		if err := ranks.Check(); err != nil {
			return err
		}

		slices.Sort(times)
		med := times[len(times)/2]
		if len(times)%2 == 0 {
			med = (times[len(times)/2-1] + times[len(times)/2]) / 2
		}
		bw := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
		factor := 2 * float64(w-1) / float64(w)
		fmt.Fprintf(out, "time per all-reduce: median %.2f ms, min %.2f ms, max %.2f ms; algbw best %.3f GB/s; CPU %.2f ms per all-reduce (%.2f cores)\n",
			ms(med), ms(times[0]), ms(times[len(times)-1]), bw(times[0]), ms(cpu), float64(cpu)/float64(med))
		fmt.Fprintf(out, "algbw_GBps=%.3f busbw_GBps=%.3f\n", bw(med), bw(med)*factor)
		return nil
	},
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// benchChildCommand runs this binary as one rank of a --procs benchmark.
func benchChildCommand(rank int, peers []string) *exec.Cmd {
	f := benchAllreduceFlags
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, "bench", "allreduce", "--bytes", f.bytes, "--chunk", f.chunk, "--wire", f.wire,
		"--child-rank", strconv.Itoa(rank), "--child-peers", strings.Join(peers, ","), "--log-level", logLevel)
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
	fl.StringVar(&benchAllreduceFlags.chunk, "chunk", "1MiB", "pipelined chunk size (bytes on the wire)")
	fl.StringVar(&benchAllreduceFlags.wire, "wire", "fp32", "wire format of the float32 data: fp32 or bf16 (train.allreduce)")
	fl.BoolVar(&benchAllreduceFlags.procs, "procs", false, "run each rank in its own child process instead of a goroutine")
	fl.IntVar(&benchAllreduceFlags.childRank, "child-rank", -1, "internal: run as rank N of a --procs benchmark")
	fl.StringVar(&benchAllreduceFlags.childPeers, "child-peers", "", "internal: peer addresses of a --procs benchmark")
	fl.MarkHidden("child-rank")
	fl.MarkHidden("child-peers")
	benchCmd.AddCommand(benchAllreduceCmd)
}
