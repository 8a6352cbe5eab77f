package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sys/cpu"

	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/model/kernels"
)

// Peak FLOP rate assumed per core for MFU: 3.0 GHz times the fp32 FLOP per
// cycle of the widest FMA this CPU has (hostFlopsPerCycle).
const peakGHz = 3.0

// hostFlopsPerCycle is 2 FMA pipes × 2 FLOP × the fp32 lanes of the widest
// vector unit: 64 with AVX-512, 32 with AVX2+FMA, 16 otherwise (SSE).
func hostFlopsPerCycle() int {
	switch {
	case cpu.X86.HasAVX512F:
		return 64
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return 32
	}
	return 16
}

var benchTrainFlags struct {
	model   string
	threads int
	steps   int
	batch   int
	seq     int
	warmup  int
	profile string
	fpc     int
}

var benchTrainCmd = &cobra.Command{
	Use:   "train",
	Short: "Time full training steps (forward, backward, AdamW) on random tokens",
	Long: `Times full training steps of a preset model — forward, backward, gradient
clipping and AdamW — on random tokens, after untimed warm-up steps.
Progress goes to stderr; the last line on stdout is
  tokens_per_s=<float> mfu=<float>
with mfu = 6·params·tokens_per_s / (threads × 3.0 GHz × flops-per-cycle),
flops-per-cycle by default that of this CPU's widest FMA: 64 with AVX-512,
32 with AVX2 (2 FMA pipes × 2 FLOP × 16 or 8 fp32 lanes).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := benchTrainFlags
		out := cmd.OutOrStdout()
		cfg, err := model.Preset(f.model)
		if err != nil {
			return fmt.Errorf("--model: %w", err)
		}
		if f.steps < 1 {
			return fmt.Errorf("--steps %d: must be at least 1", f.steps)
		}
		if f.warmup < 0 {
			return fmt.Errorf("--warmup %d: must not be negative", f.warmup)
		}
		threads := f.threads
		if threads <= 0 {
			threads = runtime.NumCPU()
		}
		runtime.GOMAXPROCS(threads)
		kernels.SetThreads(threads)
		B, T := f.batch, f.seq
		if T == 0 {
			T = cfg.ContextLength
		}
		if B < 1 || T < 1 || T > cfg.ContextLength {
			return fmt.Errorf("--batch %d --seq %d: need batch ≥ 1 and 1 ≤ seq ≤ context_length %d", B, T, cfg.ContextLength)
		}
		m, err := model.New(cfg, B, T)
		if err != nil {
			return err
		}
		m.Init(1)
		opt := model.NewAdamW(m.Layout(), model.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
		rng := rand.New(rand.NewPCG(1, 2))
		x, y := make([]int32, B*T), make([]int32, B*T)
		params := float64(cfg.NumParams())
		tokens := B * T
		if f.fpc == 0 {
			f.fpc = hostFlopsPerCycle()
		}
		if f.fpc < 1 {
			return fmt.Errorf("--flops-per-cycle %d: must be positive", f.fpc)
		}
		peak := float64(threads) * peakGHz * 1e9 * float64(f.fpc)
		fmt.Fprintf(out, "model %s: %d parameters, batch %d×%d = %d tokens/step, threads %d\n",
			f.model, cfg.NumParams(), B, T, tokens, threads)
		fmt.Fprintf(out, "peak = %d cores × %.1f GHz × %d FLOP/cycle = %.1f GFLOP/s; mfu = 6·params·tokens_per_s / peak\n",
			threads, peakGHz, f.fpc, peak/1e9)

		step := func(s int) float64 {
			for i := range x {
				x[i], y[i] = int32(rng.IntN(cfg.VocabSize)), int32(rng.IntN(cfg.VocabSize))
			}
			m.ZeroGrad()
			loss := m.Forward(x, y, B, T)
			m.Backward(1)
			model.ClipGradNorm(m.Grads, 1)
			opt.Step(m.Params, m.Grads, 1e-4, s)
			return loss
		}
		bar := progressbar.NewOptions(f.warmup+f.steps,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("bench train"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("step"),
			progressbar.OptionClearOnFinish(),
		)
		for s := 0; s < f.warmup; s++ {
			step(s)
			bar.Add(1)
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
		var loss float64
		start := time.Now()
		for s := 0; s < f.steps; s++ {
			loss = step(f.warmup + s)
			bar.Add(1)
		}
		el := time.Since(start).Seconds()
		bar.Finish()
		tps := float64(tokens*f.steps) / el
		mfu := 6 * params * tps / peak
		slog.Debug("bench train done", "last_loss", loss)
		fmt.Fprintf(out, "%d timed steps in %.3f s: %.1f ms/step, %.1f GFLOP/s achieved (6·params·tokens/s)\n",
			f.steps, el, 1e3*el/float64(f.steps), 6*params*tps/1e9)
		fmt.Fprintf(out, "tokens_per_s=%.1f mfu=%.4f\n", tps, mfu)
		return nil
	},
}

func init() {
	fl := benchTrainCmd.Flags()
	fl.StringVar(&benchTrainFlags.model, "model", "small", "model preset: cs336-17m or small")
	fl.IntVar(&benchTrainFlags.threads, "threads", 0, "threads (GOMAXPROCS and kernel threads); 0 = all cores")
	fl.IntVar(&benchTrainFlags.steps, "steps", 10, "timed training steps")
	fl.IntVar(&benchTrainFlags.warmup, "warmup", 1, "untimed warm-up steps before timing")
	fl.IntVar(&benchTrainFlags.batch, "batch", 8, "sequences per step")
	fl.IntVar(&benchTrainFlags.fpc, "flops-per-cycle", 0, "peak fp32 FLOP per cycle per core for mfu (0: this CPU's, 64 with AVX-512, 32 with AVX2)")
	fl.StringVar(&benchTrainFlags.profile, "cpuprofile", "", "write a CPU profile of the timed steps to this file")
	fl.IntVar(&benchTrainFlags.seq, "seq", 0, "tokens per sequence; 0 = the model's context_length")
	benchCmd.AddCommand(benchTrainCmd)
}
