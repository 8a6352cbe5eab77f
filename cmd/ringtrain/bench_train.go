package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/model/kernels"
	"github.com/ringtrain/ringtrain/shard"
	"github.com/ringtrain/ringtrain/trainer"
)

var benchTrainFlags struct {
	model     string
	threads   int
	steps     int
	batch     int
	micro     int
	seq       int
	warmup    int
	precision string
	profile   string
}

var benchTrainCmd = &cobra.Command{
	Use:   "train",
	Short: "Time full training steps (forward, backward, AdamW) on random tokens",
	Long: `Times the training step workers run — trainer.TrainStep on one rank: forward,
backward, gradient clipping and AdamW with the job file's defaults — for a preset
model on a shard of random tokens (written to a temporary directory), after
untimed warm-up steps. Progress goes to stderr; the last line on stdout is
  tokens_per_s=<float> mfu=<float>
mfu = flops_per_token·tokens_per_s / peak, with flops_per_token = 6·N + 12·L·d·T
(PaLM, appendix B: N the parameters without the token embedding, the second
term attention) and peak = threads × the per-core rate measured at start with
a short loop of the instruction the precision's kernels use (fp32 FMA, or for
bf16 AMX TDPBF16PS or VDPBF16PS). tokens_per_s is from the mean (the timed steps
over their total time); the lines before the last give the median, min and max
step times and the process's peak RSS.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := benchTrainFlags
		out := cmd.OutOrStdout()
		cfg, err := model.Preset(f.model)
		if err != nil {
			return fmt.Errorf("--model: %w", err)
		}
		prec, err := kernels.ParsePrecision(f.precision)
		if err != nil {
			return fmt.Errorf("--precision: %w", err)
		}
		switch {
		case f.steps < 1:
			return fmt.Errorf("--steps %d: must be at least 1", f.steps)
		case f.warmup < 0:
			return fmt.Errorf("--warmup %d: must not be negative", f.warmup)
		}
		threads := f.threads
		if threads <= 0 {
			threads = runtime.NumCPU()
		}
		runtime.GOMAXPROCS(threads)
		kernels.SetThreads(threads)
		B, T, micro := f.batch, f.seq, f.micro
		if T == 0 {
			T = cfg.ContextLength
		}
		if micro == 0 {
			micro = B
		}
		if B < 1 || T < 1 || T > cfg.ContextLength {
			return fmt.Errorf("--batch %d --seq %d: need batch ≥ 1 and 1 ≤ seq ≤ context_length %d", B, T, cfg.ContextLength)
		}
		cfg.ContextLength = T // the trainer runs sequences of context_length
		dir, err := os.MkdirTemp("", "ringtrain-bench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		j, err := benchJob(dir, f.model, cfg, B, micro, f.warmup+f.steps, f.precision)
		if err != nil {
			return err
		}
		tr, err := trainer.New(trainer.Options{Job: j, Rank: 0, World: 1})
		if err != nil {
			return err
		}
		defer tr.Close()

		tokens := B * T
		perParam, perAttn := cfg.TrainFLOPsPerToken(T)
		flopsPerToken := perParam + perAttn
		peakCore, how := kernels.PeakGFLOPS(prec)
		peak := float64(threads) * peakCore * 1e9
		n := cfg.NumParams()
		fmt.Fprintf(out, "model %s: %d parameters (%d without the token embedding), batch %d×%d = %d tokens/step (micro-batch %d), threads %d, precision %s (%s)\n",
			f.model, n, n-cfg.VocabSize*cfg.DModel, B, T, tokens, micro, threads, prec, kernels.KernelName(prec))
		fmt.Fprintf(out, "flops/token = 6·N + 12·L·d·T = %.4g + %.4g = %.4g (PaLM appendix B)\n", perParam, perAttn, flopsPerToken)
		fmt.Fprintf(out, "peak = %d threads × %.1f GFLOP/s = %.1f GFLOP/s (per core, measured: %s)\n", threads, peakCore, peak/1e9, how)

		ctx := cmd.Context()
		step, finish := counter(os.Stderr, "bench train", f.warmup+f.steps)
		for range f.warmup {
			if _, err := tr.TrainStep(ctx, trainer.Local{}, nil); err != nil {
				return err
			}
			step(1)
		}
		if f.profile != "" {
			pf, err := os.Create(f.profile)
			if err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		var last trainer.Result
		times := make([]time.Duration, f.steps)
		start := time.Now()
		for i := range times {
			t0 := time.Now()
			if last, err = tr.TrainStep(ctx, trainer.Local{}, nil); err != nil {
				return err
			}
			times[i] = time.Since(t0)
			step(1)
		}
		el := time.Since(start).Seconds()
		finish()
		tps := float64(tokens*f.steps) / el
		slog.Debug("bench train done", "last_loss", last.Loss)
		slices.Sort(times)
		med := times[len(times)/2]
		if len(times)%2 == 0 {
			med = (times[len(times)/2-1] + times[len(times)/2]) / 2
		}
		fmt.Fprintf(out, "%d timed steps in %.3f s: mean %.1f ms/step, median %.1f, min %.1f, max %.1f; %.1f GFLOP/s achieved (flops/token × tokens/s); median_tokens_per_s=%.1f\n",
			f.steps, el, 1e3*el/float64(f.steps), ms(med), ms(times[0]), ms(times[len(times)-1]), flopsPerToken*tps/1e9, float64(tokens)/med.Seconds())
		if rss := peakRSS(); rss > 0 {
			fmt.Fprintf(out, "peak RSS %.1f MiB = %.1f bytes per parameter\n", float64(rss)/(1<<20), float64(rss)/float64(n))
		}
		fmt.Fprintf(out, "tokens_per_s=%.1f mfu=%.4f\n", tps, flopsPerToken*tps/peak)
		return nil
	},
}

// benchJob writes a shard of random tokens into dir, enough for steps
// distinct steps, and returns a job of the given model over it.
func benchJob(dir, preset string, cfg model.Config, batch, micro, steps int, precision string) (*job.Job, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([]uint16, steps*batch*(cfg.ContextLength+1)+1)
	for i := range toks {
		toks[i] = uint16(rng.IntN(cfg.VocabSize))
	}
	path := filepath.Join(dir, "train_000000.bin")
	if err := shard.WriteFile(path, toks); err != nil {
		return nil, err
	}
	j := job.Default()
	j.Name = "bench"
	j.Model = job.Model{Preset: preset, ContextLength: cfg.ContextLength}
	j.Data = job.Data{Train: path, Order: "sequential"}
	j.Train.GlobalBatch, j.Train.MicroBatch = batch, micro
	j.Train.MaxSteps, j.Train.Warmup = steps, 0
	j.Train.Precision = precision
	j.Eval.Every = 0
	j.Workers.Min, j.Workers.Max = 1, 1
	return &j, nil
}

// peakRSS is the process's peak resident set in bytes (0 if unknown).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

func init() {
	fl := benchTrainCmd.Flags()
	fl.StringVar(&benchTrainFlags.model, "model", "small", "model preset: cs336-17m or small")
	fl.IntVar(&benchTrainFlags.threads, "threads", 0, "threads (GOMAXPROCS and kernel threads); 0 = all cores")
	fl.IntVar(&benchTrainFlags.steps, "steps", 10, "timed training steps")
	fl.IntVar(&benchTrainFlags.warmup, "warmup", 1, "untimed warm-up steps before timing")
	fl.IntVar(&benchTrainFlags.batch, "batch", 8, "sequences per step (train.global_batch)")
	fl.IntVar(&benchTrainFlags.micro, "micro-batch", 0, "sequences per forward/backward (train.micro_batch); 0 = --batch")
	fl.IntVar(&benchTrainFlags.seq, "seq", 0, "tokens per sequence; 0 = the model's context_length")
	fl.StringVar(&benchTrainFlags.precision, "precision", "fp32", "matmul precision: fp32 or bf16 (train.precision)")
	fl.StringVar(&benchTrainFlags.profile, "cpuprofile", "", "write a CPU profile of the timed steps to this file")
	benchCmd.AddCommand(benchTrainCmd)
}
