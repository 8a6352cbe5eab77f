package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/shard"
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
}

var prepareCmd = &cobra.Command{
	Use:   "prepare --tokenizer DIR --input FILE... --out DIR",
	Short: "Tokenize text files into train/val token shards",
	Long: `Encodes the input files with a tokenizer and writes llm.c token shards
DIR/train_NNNNNN.bin and DIR/val_NNNNNN.bin (uint16 tokens after a 1024-byte
header; read them with a data glob such as DIR/train_*.bin).

Documents. The inputs are encoded in the order given, as one token stream.
Occurrences of the separator (--special, default <|endoftext|>) in the text
are encoded as that special token, and one separator token is inserted
between consecutive input files (unless the previous file already ends with
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
		cfg := prepareConfig{
			Inputs:      append(append([]string(nil), f.inputs...), args...),
			Out:         f.out,
			ValFraction: f.valFraction,
			ShardTokens: f.shardTokens,
			Separator:   f.special,
			Overwrite:   f.overwrite,
		}
		if f.tokenizer == "" {
			return fmt.Errorf("--tokenizer is required")
		}
		if err := cfg.validate(); err != nil {
			return err
		}
		tok, err := loadPrepareTokenizer(f.tokenizer, f.special)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		res, err := runPrepare(ctx, cfg, tok, cmd.ErrOrStderr())
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

func init() {
	fl := prepareCmd.Flags()
	fl.StringVar(&prepareFlags.tokenizer, "tokenizer", "", "tokenizer directory with vocab.json and merges.txt (required)")
	fl.StringArrayVar(&prepareFlags.inputs, "input", nil, "input text file; repeat the flag or list more files as arguments (required)")
	fl.StringVar(&prepareFlags.out, "out", "", "output directory for train_NNNNNN.bin and val_NNNNNN.bin (required)")
	fl.Float64Var(&prepareFlags.valFraction, "val-fraction", 0.1, "fraction of the tokens, taken from the end of the stream, that goes to val (0 ≤ F < 1)")
	fl.Int64Var(&prepareFlags.shardTokens, "shard-tokens", 100_000_000, "maximum tokens per shard")
	fl.StringVar(&prepareFlags.special, "special", tokenizer.EndOfText, `document separator: a special token of the tokenizer, inserted between input files ("" = none)`)
	fl.BoolVar(&prepareFlags.overwrite, "overwrite", false, "delete existing train_*.bin and val_*.bin in --out first (otherwise they are an error)")
	rootCmd.AddCommand(prepareCmd)
}

// prepareTokenizerDir is where prepare saves its tokenizer inside --out.
const prepareTokenizerDir = "tokenizer"

// prepareConfig is what runPrepare needs besides the encoder.
type prepareConfig struct {
	Inputs      []string
	Out         string
	ValFraction float64
	ShardTokens int64
	Separator   string // "" = none
	Overwrite   bool
}

func (c prepareConfig) validate() error {
	switch {
	case len(c.Inputs) == 0:
		return fmt.Errorf("--input: at least one input file is required")
	case c.Out == "":
		return fmt.Errorf("--out is required")
	case !(c.ValFraction >= 0 && c.ValFraction < 1):
		return fmt.Errorf("--val-fraction %v: want 0 ≤ F < 1", c.ValFraction)
	case c.ShardTokens < 1 || c.ShardTokens > shard.MaxTokens:
		return fmt.Errorf("--shard-tokens %d: want 1..%d", c.ShardTokens, int64(shard.MaxTokens))
	}
	return nil
}

// streamEncoder is what prepare needs of a tokenizer.
type streamEncoder interface {
	EncodeStream(r io.Reader, fn func(ids []int) error) error
	VocabSize() int
	SpecialID(s string) (int, bool)
}

var _ streamEncoder = (*tokenizer.Tokenizer)(nil)

// loadPrepareTokenizer loads dir and makes sure sep ("" = none) is one of
// its tokens, recognised as a special token.
func loadPrepareTokenizer(dir, sep string) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer %s: %w", dir, err)
	}
	if sep == "" {
		return tok, nil
	}
	if _, ok := tok.SpecialID(sep); ok {
		return tok, nil
	}
	// A regular vocabulary entry with the separator's bytes can be promoted
	// to a special token; a new id cannot be invented here, since the model
	// and the saved tokenizer would not know it.
	withSep, err := tokenizer.Load(dir, sep)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer %s: %w", dir, err)
	}
	if withSep.VocabSize() != tok.VocabSize() {
		return nil, fmt.Errorf("--special %q: not a token of tokenizer %s (train it with --special %q, or pass --special \"\")", sep, dir, sep)
	}
	return withSep, nil
}

// prepareResult summarises a run of runPrepare.
type prepareResult struct {
	InputBytes             int64
	Tokens                 int64
	TrainTokens, ValTokens int64
	TrainShards, ValShards []string
}

// valTokens returns how many of n tokens go to val: ⌈f·n⌉, at least 1 when
// f > 0 and n > 0.
func valTokens(n int64, f float64) int64 {
	if f <= 0 || n <= 0 {
		return 0
	}
	v := int64(math.Ceil(f * float64(n)))
	return min(max(v, 1), n)
}

// runPrepare encodes cfg.Inputs with enc and writes the train and val
// shards into cfg.Out. Progress (input bytes) goes to progress.
func runPrepare(ctx context.Context, cfg prepareConfig, enc streamEncoder, progress io.Writer) (prepareResult, error) {
	var res prepareResult
	if err := cfg.validate(); err != nil {
		return res, err
	}
	vocab := enc.VocabSize()
	if vocab > shard.MaxVocab {
		return res, fmt.Errorf("tokenizer vocabulary of %d tokens does not fit uint16 shards (at most %d)", vocab, shard.MaxVocab)
	}
	sepID := -1
	if cfg.Separator != "" {
		id, ok := enc.SpecialID(cfg.Separator)
		if !ok {
			return res, fmt.Errorf("--special %q: not a special token of the tokenizer", cfg.Separator)
		}
		sepID = id
	}
	for _, p := range cfg.Inputs {
		st, err := os.Stat(p)
		if err != nil {
			return res, fmt.Errorf("--input: %w", err)
		}
		if !st.Mode().IsRegular() {
			return res, fmt.Errorf("--input %s: not a regular file", p)
		}
		res.InputBytes += st.Size()
	}
	if err := prepareOutDir(cfg.Out, cfg.Overwrite); err != nil {
		return res, err
	}
	slog.Info("prepare", "inputs", len(cfg.Inputs), "bytes", res.InputBytes, "vocab", vocab,
		"separator", cfg.Separator, "val_fraction", cfg.ValFraction, "shard_tokens", cfg.ShardTokens, "out", cfg.Out)

	// Phase 1: the whole token stream into a temporary raw file in Out.
	tmp := filepath.Join(cfg.Out, ".prepare-tokens.raw")
	defer os.Remove(tmp)
	w, err := shard.Create(tmp, shard.WithFormat(shard.FormatRaw))
	if err != nil {
		return res, err
	}
	defer w.Abort()
	bar := progressbar.NewOptions64(res.InputBytes,
		progressbar.OptionSetWriter(progress),
		progressbar.OptionSetDescription("encode"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000), // 0.1 s
		progressbar.OptionClearOnFinish(),
	)
	last := -1 // the last token written
	for i, p := range cfg.Inputs {
		if sepID >= 0 && i > 0 && w.Count() > 0 && last != sepID {
			if err := w.WriteInts([]int{sepID}, vocab); err != nil {
				return res, err
			}
			last = sepID
		}
		if err := encodeFile(ctx, p, enc, bar, func(ids []int) error {
			if len(ids) == 0 {
				return nil
			}
			if err := w.WriteInts(ids, vocab); err != nil {
				return fmt.Errorf("input %s: %w", p, err)
			}
			last = ids[len(ids)-1]
			return nil
		}); err != nil {
			return res, err
		}
	}
	bar.Finish()
	if err := w.Close(); err != nil {
		return res, err
	}

	// Phase 2: split and cut into shards.
	s, err := shard.Open(tmp, shard.MaxVocab, shard.WithFormat(shard.FormatRaw))
	if err != nil {
		return res, err
	}
	defer s.Close()
	tokens := s.Tokens()
	res.Tokens = int64(len(tokens))
	res.ValTokens = valTokens(res.Tokens, cfg.ValFraction)
	res.TrainTokens = res.Tokens - res.ValTokens
	if res.TrainTokens == 0 {
		return res, fmt.Errorf("inputs hold %d tokens, too few to split with --val-fraction %v", res.Tokens, cfg.ValFraction)
	}
	if res.TrainShards, err = shard.WriteSharded(cfg.Out, "train", tokens[:res.TrainTokens], cfg.ShardTokens, nil); err != nil {
		return res, err
	}
	if res.ValShards, err = shard.WriteSharded(cfg.Out, "val", tokens[res.TrainTokens:], cfg.ShardTokens, nil); err != nil {
		return res, err
	}
	return res, nil
}

// encodeFile streams file p through enc, adding the bytes read to bar.
func encodeFile(ctx context.Context, p string, enc streamEncoder, bar *progressbar.ProgressBar, fn func(ids []int) error) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	defer f.Close()
	r := &progressReader{r: f, bar: bar}
	err = enc.EncodeStream(r, func(ids []int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(ids)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("encode %s: %w", p, err)
	}
	return err
}

type progressReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.bar.Add64(int64(n))
	return n, err
}

// prepareOutDir creates dir and refuses existing shards, or deletes them
// with overwrite, so that a data glob never mixes two runs.
func prepareOutDir(dir string, overwrite bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var old []string
	for _, prefix := range []string{"train", "val"} {
		m, err := filepath.Glob(filepath.Join(dir, prefix+"_*.bin"))
		if err != nil {
			return fmt.Errorf("--out %s: %w", dir, err)
		}
		old = append(old, m...)
	}
	if len(old) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("--out %s already holds %d shards (e.g. %s); pass --overwrite to replace them", dir, len(old), filepath.Base(old[0]))
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("--overwrite: %w", err)
		}
	}
	slog.Info("removed old shards", "out", dir, "count", len(old))
	return nil
}
