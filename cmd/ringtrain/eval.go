package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
	"github.com/ringtrain/ringtrain/trainer"
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
		cfg, params, err := trainer.LoadModel(f.checkpoint)
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
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
		m, err := model.New(cfg, min(f.batch, n), T)
		if err != nil {
			return err
		}
		copy(m.Params, params)
		slog.Info("eval", "model", f.checkpoint, "params", cfg.NumParams(), "sequences", n, "context", T, "batch", m.MaxB)

		add, finish := counter(os.Stderr, "eval (sequences)", n)
		loss := trainer.SumLoss(m, ds, 0, n, add) / float64(n)
		finish()
		fmt.Fprintf(cmd.OutOrStdout(), "loss=%.6f ppl=%.4f tokens=%d\n", loss, math.Exp(loss), n*T)
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
