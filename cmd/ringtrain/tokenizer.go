package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/tokenizer"
)

func init() {
	rootCmd.AddCommand(newTokenizerCmd())
}

// newTokenizerCmd builds `ringtrain tokenizer` and its subcommands (fresh
// flag state on every call, so tests can run them repeatedly).
func newTokenizerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenizer",
		Short: "Train a byte-level BPE tokenizer, encode text to ids, decode ids to text",
		Long: `Byte-level BPE in the GPT-2 format. A tokenizer directory holds
  vocab.json          token (GPT-2 byte-to-unicode form) -> id
  merges.txt          one merge per line, in priority order
  special_tokens.json JSON list of the special tokens (optional: without it,
                      <|endoftext|> is special when vocab.json has it)
A GPT-2 directory (vocab.json + merges.txt) works as is, and so does a Hugging
Face tokenizer.json of a byte-level BPE tokenizer (a directory holding it, or
the file itself) wherever --tokenizer is asked for.`,
	}
	cmd.AddCommand(newTokenizerTrainCmd(), newTokenizerEncodeCmd(), newTokenizerDecodeCmd())
	return cmd
}

func newTokenizerTrainCmd() *cobra.Command {
	var f struct {
		inputs    []string
		vocabSize int
		special   []string
		out       string
		workers   int
	}
	cmd := &cobra.Command{
		Use:   "train --input FILE... --vocab-size N [--special TOK]... --out DIR",
		Short: "Train a byte-level BPE tokenizer on text files",
		Long: `Trains byte-level BPE on the input files (read in streaming chunks, so they
may be larger than memory) and writes DIR/vocab.json, DIR/merges.txt and
DIR/special_tokens.json.

The text is split at the special tokens, pre-tokenized with the GPT-2 pattern,
and the most frequent adjacent pair is merged until the vocabulary has N
tokens: the special tokens (ids 0..S-1), the 256 bytes, then one per merge.
Pass --special "" to train without special tokens. Input files may also be
given as arguments.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs := append(append([]string{}, f.inputs...), args...)
			if len(inputs) == 0 {
				return fmt.Errorf("--input: at least one file is required")
			}
			if f.out == "" {
				return fmt.Errorf("--out: an output directory is required")
			}
			special := nonEmpty(f.special)
			cfg := tokenizer.TrainConfig{VocabSize: f.vocabSize, Special: special, Workers: f.workers}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("--vocab-size %d, --special %q: %w", f.vocabSize, special, err)
			}
			progress, finish := stageBars(cmd.ErrOrStderr(), map[string]stage{
				"count": {label: "pre-tokenize", bytes: true},
				"merge": {label: "merge"},
			})
			cfg.Progress = progress
			start := time.Now()
			slog.Info("tokenizer train", "inputs", inputs, "vocab_size", f.vocabSize, "special", special)
			tok, err := tokenizer.TrainFiles(cfg, inputs...)
			finish()
			if err != nil {
				return err
			}
			if err := tok.Save(f.out); err != nil {
				return fmt.Errorf("--out %s: %w", f.out, err)
			}
			merges := len(tok.Merges())
			if merges < f.vocabSize-256-len(special) {
				slog.Warn("the text ran out of pairs before the vocabulary was full", "vocab_size", tok.VocabSize(), "wanted", f.vocabSize)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: vocab_size=%d merges=%d special=%q seconds=%.2f\n",
				f.out, tok.VocabSize(), merges, special, time.Since(start).Seconds())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.inputs, "input", nil, "training text files (repeat the flag or separate with commas)")
	fl.IntVar(&f.vocabSize, "vocab-size", 10000, "final vocabulary size, special tokens and the 256 bytes included")
	fl.StringArrayVar(&f.special, "special", []string{tokenizer.EndOfText}, "special token (repeatable); --special \"\" for none")
	fl.StringVar(&f.out, "out", "", "output directory (created if needed)")
	fl.IntVar(&f.workers, "workers", 0, "pre-tokenizing goroutines (0: one per CPU)")
	return cmd
}

func newTokenizerEncodeCmd() *cobra.Command {
	var f struct {
		dir     string
		special []string
	}
	cmd := &cobra.Command{
		Use:   "encode --tokenizer DIR [--special TOK]...",
		Short: "Encode stdin to token ids: decimal, separated by single spaces, one line",
		Long: `Reads text on stdin (any bytes, any size: it is encoded in streaming chunks)
and writes its token ids to stdout as decimal numbers separated by single
spaces, on one line. Special tokens of the tokenizer (special_tokens.json, or
<|endoftext|> when vocab.json has it) and those given with --special are
encoded as single ids; --special tokens missing from the vocabulary get new
ids after the last one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := loadTokenizer(f.dir, nonEmpty(f.special))
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			first := true
			var buf []byte
			err = tok.EncodeStream(cmd.InOrStdin(), func(ids []int) error {
				buf = buf[:0]
				for _, id := range ids {
					if !first {
						buf = append(buf, ' ')
					}
					first = false
					buf = strconv.AppendInt(buf, int64(id), 10)
				}
				_, err := w.Write(buf)
				return err
			})
			if err != nil {
				return fmt.Errorf("encode stdin: %w", err)
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.dir, "tokenizer", "", "tokenizer directory (vocab.json, merges.txt)")
	cmd.Flags().StringArrayVar(&f.special, "special", nil, "additional special token (repeatable)")
	return cmd
}

func newTokenizerDecodeCmd() *cobra.Command {
	var f struct {
		dir string
		raw bool
	}
	cmd := &cobra.Command{
		Use:   "decode --tokenizer DIR",
		Short: "Decode token ids on stdin (whitespace separated) to text on stdout",
		Long: `Reads decimal token ids separated by any whitespace on stdin and writes the
text they stand for. Bytes that are not valid UTF-8 are written as U+FFFD
unless --raw is given, in which case the exact bytes are written (decode is
then the inverse of encode on any input).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := loadTokenizer(f.dir, nil)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var out io.Writer = w
			var text *tokenizer.UTF8Writer
			if !f.raw {
				text = tokenizer.NewUTF8Writer(w)
				out = text
			}
			sc := bufio.NewScanner(cmd.InOrStdin())
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			sc.Split(bufio.ScanWords)
			ids := make([]int, 0, 4096)
			var buf []byte
			flush := func() error {
				var err error
				if buf, err = tok.AppendDecode(buf[:0], ids); err != nil {
					return err
				}
				ids = ids[:0]
				_, err = out.Write(buf)
				return err
			}
			for n := 1; sc.Scan(); n++ {
				id, err := strconv.Atoi(sc.Text())
				if err != nil {
					return fmt.Errorf("stdin: token %d: %q is not a decimal id", n, sc.Text())
				}
				if id < 0 || id >= tok.VocabSize() {
					return fmt.Errorf("stdin: token %d: id %d outside the vocabulary (size %d)", n, id, tok.VocabSize())
				}
				ids = append(ids, id)
				if len(ids) == cap(ids) {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
			if err := flush(); err != nil {
				return err
			}
			if text != nil {
				if err := text.Close(); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.dir, "tokenizer", "", "tokenizer directory (vocab.json, merges.txt)")
	cmd.Flags().BoolVar(&f.raw, "raw", false, "write the decoded bytes exactly, even when not valid UTF-8")
	return cmd
}

func loadTokenizer(dir string, extra []string) (*tokenizer.Tokenizer, error) {
	if dir == "" {
		return nil, fmt.Errorf("--tokenizer: a tokenizer directory is required")
	}
	tok, err := tokenizer.Load(dir, extra...)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer %s: %w", dir, err)
	}
	return tok, nil
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
