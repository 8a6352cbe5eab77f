package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/hf"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

var exportFlags struct {
	checkpoint, format, out, tokenizer string
}

var exportCmd = &cobra.Command{
	Use:   "export --checkpoint PATH --format hf-llama --out DIR [--tokenizer DIR]",
	Short: "Write a checkpoint as a Hugging Face Llama directory",
	Long: `Writes the model of --checkpoint as a Hugging Face LlamaForCausalLM directory
that transformers' AutoModelForCausalLM.from_pretrained(DIR) and
AutoTokenizer.from_pretrained(DIR) load:

  config.json              LlamaForCausalLM, the model's sizes, rms_norm_eps 1e-5
  model.safetensors        float32, Hugging Face tensor names; the rows of q_proj
                           and k_proj permuted per head to Hugging Face's RoPE
                           (it rotates halves, ringtrain interleaved pairs)
  vocab.json, merges.txt   the GPT-2 style tokenizer, with tokenizer_config.json
                           and special_tokens_map.json

The tokenizer is --tokenizer, or else the one kept with the checkpoint or named
by its job (as for generate); without either only the model is written.
--checkpoint accepts a run dir (its newest committed checkpoint), a checkpoint
dir or a .safetensors file. The directory reads back as --checkpoint, init:
and eval input (docs/export.md).`,
	Example: `  ringtrain export --checkpoint runs/shakespeare --format hf-llama --out hf/shakespeare`,
	Args:    cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := exportFlags
		switch {
		case f.checkpoint == "" || f.out == "":
			return fmt.Errorf("--checkpoint and --out are required")
		case f.format != "hf-llama":
			return fmt.Errorf("--format %q: the only format is hf-llama", f.format)
		}
		file, err := trainer.ModelPath(f.checkpoint)
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
		cfg, params, err := trainer.LoadModel(file)
		if err != nil {
			return err
		}
		tokDir := f.tokenizer
		if tokDir == "" {
			if tokDir, err = trainer.FindTokenizer(file); err != nil {
				slog.Warn("exporting without a tokenizer (pass --tokenizer to include one)", "err", err)
			}
		}
		var tok *tokenizer.Tokenizer
		if tokDir != "" {
			if tok, err = tokenizer.Load(tokDir); err != nil {
				return fmt.Errorf("--tokenizer %s: %w", tokDir, err)
			}
		}
		if err := hf.Write(f.out, cfg, params, tok); err != nil {
			return fmt.Errorf("--out %s: %w", f.out, err)
		}
		slog.Info("exported", "model", file, "params", cfg.NumParams(), "tokenizer", tokDir, "out", f.out)
		fmt.Fprintln(cmd.OutOrStdout(), f.out)
		return nil
	},
}

func init() {
	fl := exportCmd.Flags()
	fl.StringVar(&exportFlags.checkpoint, "checkpoint", "", "run dir, checkpoint dir or .safetensors file (required)")
	fl.StringVar(&exportFlags.format, "format", "hf-llama", "output format: hf-llama")
	fl.StringVar(&exportFlags.out, "out", "", "output directory (created; its files are replaced) (required)")
	fl.StringVar(&exportFlags.tokenizer, "tokenizer", "", "tokenizer dir to include (default: the one kept with the checkpoint or named by its job)")
	rootCmd.AddCommand(exportCmd)
}
