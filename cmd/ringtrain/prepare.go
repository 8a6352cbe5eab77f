package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/dataprep"
	"github.com/ringtrain/ringtrain/tokenizer"
)

var prepareFlags struct {
	tokenizer   string
	inputs      []string
	out         string
	valFraction float64
	shardTokens int64
	special     string
	overwrite   bool
	jsonlField  string
}

var prepareCmd = &cobra.Command{
	Use:   "prepare --tokenizer DIR --input PATH... --out DIR",
	Short: "Tokenize text files into train/val token shards",
	Long: `Encodes the input files with a tokenizer and writes llm.c token shards
DIR/train_NNNNNN.bin and DIR/val_NNNNNN.bin (uint16 tokens after a 1024-byte
header; read them with a data glob such as DIR/train_*.bin).

Inputs. A file ending in .jsonl (or .ndjson) holds JSON lines: each line's
string field --jsonl-field (default "text") is one document. Any other file
is plain text, one document. Either may be gzip-compressed (.gz). A directory
stands for the .txt, .text, .md, .jsonl and .ndjson files (and their .gz)
under it, sorted by path; hidden files are skipped.

Documents. The documents are encoded in the order given, as one token stream.
Occurrences of the separator (--special, default <|endoftext|>) in the text
are encoded as that special token, and one separator token is inserted
between consecutive documents (unless the previous one already ends with
it). --special "" disables the separator. The separator must be a token of
the tokenizer.

Split. Of the N tokens of the stream, the last ⌈F·N⌉ (F = --val-fraction)
are the validation split and the rest the training split; with F > 0 the
validation split gets at least one token, hence one shard. F = 0 writes no
val shards.

Shards. Each split is cut into k = ⌈tokens/--shard-tokens⌉ shards of equal
size (±1 token), so there is no tiny last shard. The token stream is first
written to a temporary file in DIR (2 bytes a token), removed at the end.

The tokenizer used is saved as DIR/tokenizer/, where a job reading DIR's shards
finds it (generate and export then need no --tokenizer).

Inputs may also be given as arguments: prepare --tokenizer T --out D --input a.txt b.txt.
The last line on stdout is
  tokens=<int> train_tokens=<int> val_tokens=<int> train_shards=<int> val_shards=<int> bytes_per_token=<float>`,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := prepareFlags
		paths := append(append([]string(nil), f.inputs...), args...)
		switch {
		case f.tokenizer == "":
			return fmt.Errorf("--tokenizer is required")
		case len(paths) == 0:
			return fmt.Errorf("--input: at least one input file is required")
		case f.out == "":
			return fmt.Errorf("--out is required")
		}
		inputs, err := dataprep.InputOptions{JSONLField: f.jsonlField}.Inputs(paths...)
		if err != nil {
			return err
		}
		progress, finish := stageBars(cmd.ErrOrStderr(), map[string]stage{
			"encode": {label: "encode", bytes: true},
			"write":  {label: "write shards"},
		})
		cfg := dataprep.Config{
			Inputs:      inputs,
			Out:         f.out,
			ValFraction: f.valFraction,
			ShardTokens: f.shardTokens,
			Separator:   f.special,
			Overwrite:   f.overwrite,
			Progress:    progress,
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--val-fraction %v, --shard-tokens %d: %w", f.valFraction, f.shardTokens, err)
		}
		tok, err := dataprep.LoadTokenizer(f.tokenizer, f.special)
		if errors.Is(err, dataprep.ErrNoSeparator) {
			return fmt.Errorf("%w (train it with --special %q, or pass --special \"\")", err, f.special)
		}
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		res, err := dataprep.Prepare(ctx, cfg, tok)
		finish()
		if errors.Is(err, dataprep.ErrShardsExist) {
			return fmt.Errorf("%w; pass --overwrite to replace them", err)
		}
		if err != nil {
			return err
		}
		// The tokenizer travels with the shards: a job whose data.train
		// is OUT/train_*.bin finds it (job.Job.TokenizerDir).
		if err := tok.Save(filepath.Join(cfg.Out, prepareTokenizerDir)); err != nil {
			return fmt.Errorf("--out %s: save the tokenizer: %w", cfg.Out, err)
		}
		bpt := 0.0
		if res.Tokens > 0 {
			bpt = float64(res.InputBytes) / float64(res.Tokens)
		}
		slog.Info("prepare done", "out", cfg.Out, "input_bytes", res.InputBytes, "vocab", tok.VocabSize())
		fmt.Fprintf(cmd.OutOrStdout(), "tokens=%d train_tokens=%d val_tokens=%d train_shards=%d val_shards=%d bytes_per_token=%.4f\n",
			res.Tokens, res.TrainTokens, res.ValTokens, len(res.TrainShards), len(res.ValShards), bpt)
		return nil
	},
}

// prepareTokenizerDir is where prepare saves its tokenizer inside --out.
const prepareTokenizerDir = "tokenizer"

func init() {
	fl := prepareCmd.Flags()
	fl.StringVar(&prepareFlags.tokenizer, "tokenizer", "", "tokenizer directory with vocab.json and merges.txt, or a Hugging Face tokenizer.json (required)")
	fl.StringArrayVar(&prepareFlags.inputs, "input", nil, "input file or directory (.txt, .jsonl, .gz, ...); repeat the flag or list more as arguments (required)")
	fl.StringVar(&prepareFlags.jsonlField, "jsonl-field", "text", "the field of each JSON line (.jsonl inputs) that holds its text")
	fl.StringVar(&prepareFlags.out, "out", "", "output directory for train_NNNNNN.bin and val_NNNNNN.bin (required)")
	fl.Float64Var(&prepareFlags.valFraction, "val-fraction", 0.1, "fraction of the tokens, taken from the end of the stream, that goes to val (0 ≤ F < 1)")
	fl.Int64Var(&prepareFlags.shardTokens, "shard-tokens", 100_000_000, "maximum tokens per shard")
	fl.StringVar(&prepareFlags.special, "special", tokenizer.EndOfText, `document separator: a special token of the tokenizer, inserted between input files ("" = none)`)
	fl.BoolVar(&prepareFlags.overwrite, "overwrite", false, "delete existing train_*.bin and val_*.bin in --out first (otherwise they are an error)")
	rootCmd.AddCommand(prepareCmd)
}
