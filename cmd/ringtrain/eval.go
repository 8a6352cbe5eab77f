package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

var evalFlags struct {
	checkpoint string
	data       string
	batch      int
	max        int
	format     string
}

var evalCmd = &cobra.Command{
	Use:   "eval --checkpoint PATH --data GLOB",
	Short: "Mean cross-entropy of a checkpoint over every sequence of token shards",
	Long: `Computes the mean cross-entropy of a model over every sequence of the token
shards matching GLOB (context T = the model's context_length: sequence k of a
shard is x = tok[kT : kT+T], y = tok[kT+1 : kT+T+1]).

--checkpoint accepts a run dir (its newest committed checkpoint), a checkpoint
dir, a .safetensors file, or a Hugging Face Llama directory (ringtrain export
writes one). --format raw reads nanoGPT's headerless uint16 .bin files. The
last line on stdout is
  loss=<float> ppl=<float> tokens=<int>`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := evalFlags
		if f.checkpoint == "" || f.data == "" {
			return fmt.Errorf("--checkpoint and --data are required")
		}
		if f.batch < 1 {
			return fmt.Errorf("--batch %d: must be at least 1", f.batch)
		}
		format, err := shard.ParseFormat(f.format)
		if err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		file, err := checkpoint.Resolve(f.checkpoint)
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
		cfg, params, err := checkpoint.LoadModel(file)
		if err != nil {
			return err
		}
		T := cfg.ContextLength
		ds, err := shard.OpenGlob(f.data, cfg.VocabSize, T, shard.WithFormat(format))
		if err != nil {
			return fmt.Errorf("--data %s: %w", f.data, err)
		}
		defer ds.Close()
		n := ds.NumSequences()
		if f.max > 0 && f.max < n {
			n = f.max
		}
		B := min(f.batch, n)
		m, err := model.New(cfg, B, T)
		if err != nil {
			return err
		}
		copy(m.Params, params)
		slog.Info("eval", "model", file, "params", cfg.NumParams(), "sequences", n, "context", T, "batch", B)

		x, y := make([]int32, B*T), make([]int32, B*T)
		bar := progressbar.NewOptions(n,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("eval"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("seq"),
			progressbar.OptionClearOnFinish(),
		)
		var sum float64
		for i := 0; i < n; i += B {
			b := min(B, n-i)
			for j := 0; j < b; j++ {
				ds.Sequence(i+j, x[j*T:], y[j*T:])
			}
			sum += m.Forward(x, y, b, T) * float64(b*T)
			bar.Add(b)
		}
		bar.Finish()
		tokens := n * T
		loss := sum / float64(tokens)
		fmt.Fprintf(cmd.OutOrStdout(), "loss=%.6f ppl=%.4f tokens=%d\n", loss, math.Exp(loss), tokens)
		return nil
	},
}

func init() {
	fl := evalCmd.Flags()
	fl.StringVar(&evalFlags.checkpoint, "checkpoint", "", "run dir, checkpoint dir, .safetensors file or Hugging Face dir (required)")
	fl.StringVar(&evalFlags.format, "format", "llmc", "shard format: llmc (with the 1024-byte header) or raw (nanoGPT .bin, no header)")
	fl.StringVar(&evalFlags.data, "data", "", "glob of token shards, e.g. 'data/val_*.bin' (required)")
	fl.IntVar(&evalFlags.batch, "batch", 8, "sequences per forward pass")
	fl.IntVar(&evalFlags.max, "max-sequences", 0, "evaluate only the first N sequences; 0 = all")
	rootCmd.AddCommand(evalCmd)
}
