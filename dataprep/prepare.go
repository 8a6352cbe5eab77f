package dataprep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/ringtrain/ringtrain/shard"
)

var (
	// ErrBadConfig is wrapped by the errors of Config.Validate.
	ErrBadConfig = errors.New("invalid prepare config")
	// ErrShardsExist: the output directory holds shards of an earlier run
	// and Config.Overwrite is not set.
	ErrShardsExist = errors.New("output directory already holds shards")
)

// Encoder is what Prepare needs of a tokenizer (*tokenizer.Tokenizer).
type Encoder interface {
	EncodeStream(r io.Reader, fn func(ids []int) error) error
	VocabSize() int
	SpecialID(s string) (int, bool)
}

// Config says what Prepare reads and writes.
type Config struct {
	Inputs []Input
	// Out is the directory of the shards (created if needed).
	Out string
	// ValFraction F: the last ⌈F·N⌉ of the N tokens are the val split, at
	// least one when F > 0. 0 ≤ F < 1.
	ValFraction float64
	// ShardTokens is the most tokens a shard holds, 1..shard.MaxTokens.
	ShardTokens int64
	// Separator is a special token of the encoder put between consecutive
	// documents, unless the stream is empty or already ends with it; ""
	// means none.
	Separator string
	// Overwrite deletes the shards already in Out; without it they are
	// ErrShardsExist.
	Overwrite bool
	// Progress, when set, is called from Prepare's goroutine with stage
	// "encode" (done = input bytes read, total = the sum of Input.Size),
	// then stage "write" (done = tokens written to shards, total = all
	// tokens).
	Progress func(stage string, done, total int64)
}

// Validate reports the first invalid field, by name.
func (c Config) Validate() error {
	switch {
	case len(c.Inputs) == 0:
		return fmt.Errorf("%w: no Inputs", ErrBadConfig)
	case c.Out == "":
		return fmt.Errorf("%w: no Out directory", ErrBadConfig)
	case !(c.ValFraction >= 0 && c.ValFraction < 1):
		return fmt.Errorf("%w: ValFraction %v: want 0 ≤ F < 1", ErrBadConfig, c.ValFraction)
	case c.ShardTokens < 1 || c.ShardTokens > shard.MaxTokens:
		return fmt.Errorf("%w: ShardTokens %d: want 1..%d", ErrBadConfig, c.ShardTokens, int64(shard.MaxTokens))
	}
	return nil
}

// Result says what Prepare wrote.
type Result struct {
	InputBytes             int64 // the sum of Input.Size
	Tokens                 int64
	TrainTokens, ValTokens int64
	TrainShards, ValShards []string // paths
}

// ValTokens returns how many of n tokens go to the val split: ⌈f·n⌉, at
// least 1 when f > 0 and n > 0.
func ValTokens(n int64, f float64) int64 {
	if f <= 0 || n <= 0 {
		return 0
	}
	v := int64(math.Ceil(f * float64(n)))
	return min(max(v, 1), n)
}

// Prepare encodes the documents of cfg.Inputs with enc as one token stream
// and writes it as shards cfg.Out/train_NNNNNN.bin and val_NNNNNN.bin
// (docs/data.md): the last ValTokens of the stream are the val split, and
// each split is cut into equal shards (shard.WriteSharded). The stream
// first goes to a temporary file in cfg.Out, 2 bytes a token, removed at
// the end. Cancelling ctx stops the encoding and leaves no file behind.
func Prepare(ctx context.Context, cfg Config, enc Encoder) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
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
			return res, fmt.Errorf("separator %q: not a special token of the tokenizer", cfg.Separator)
		}
		sepID = id
	}
	for _, in := range cfg.Inputs {
		res.InputBytes += in.Size
	}
	if err := prepareOut(cfg.Out, cfg.Overwrite); err != nil {
		return res, err
	}
	slog.Info("prepare", "inputs", len(cfg.Inputs), "bytes", res.InputBytes, "vocab", vocab,
		"separator", cfg.Separator, "val_fraction", cfg.ValFraction, "shard_tokens", cfg.ShardTokens, "out", cfg.Out)
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}

	// Phase 1: the whole token stream into a temporary raw file in Out.
	tmp := filepath.Join(cfg.Out, ".prepare-tokens.raw")
	defer os.Remove(tmp)
	w, err := shard.Create(tmp, shard.WithFormat(shard.FormatRaw))
	if err != nil {
		return res, err
	}
	defer w.Abort()
	progress("encode", 0, res.InputBytes)
	ts := &tokenStream{w: w, enc: enc, vocab: vocab, sep: sepID, last: -1}
	var read int64 // bytes of the inputs done
	for _, in := range cfg.Inputs {
		n, err := ts.input(ctx, in, func(n int64) { progress("encode", read+n, res.InputBytes) })
		if err != nil {
			return res, err
		}
		read += n
		progress("encode", read, res.InputBytes)
	}
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
	res.ValTokens = ValTokens(res.Tokens, cfg.ValFraction)
	res.TrainTokens = res.Tokens - res.ValTokens
	if res.TrainTokens == 0 {
		return res, fmt.Errorf("inputs hold %d tokens, too few to split with val fraction %v", res.Tokens, cfg.ValFraction)
	}
	progress("write", 0, res.Tokens)
	if res.TrainShards, err = shard.WriteSharded(cfg.Out, "train", tokens[:res.TrainTokens], cfg.ShardTokens,
		func(n int64) { progress("write", n, res.Tokens) }); err != nil {
		return res, err
	}
	if res.ValShards, err = shard.WriteSharded(cfg.Out, "val", tokens[res.TrainTokens:], cfg.ShardTokens,
		func(n int64) { progress("write", res.TrainTokens+n, res.Tokens) }); err != nil {
		return res, err
	}
	return res, nil
}

// tokenStream writes the tokens of consecutive documents to w, with the
// separator between them.
type tokenStream struct {
	w     *shard.Writer
	enc   Encoder
	vocab int
	sep   int // the separator's id; -1: none
	docs  int // documents begun
	last  int // the last token written; -1: none yet
}

// input encodes the documents of in. tick is called, from this goroutine,
// with the bytes of the file read so far. It returns the bytes read.
func (s *tokenStream) input(ctx context.Context, in Input, tick func(read int64)) (int64, error) {
	f, err := os.Open(in.Path)
	if err != nil {
		return 0, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	format := in.Format
	if format == nil {
		format = Text
	}
	r := &countingReader{r: f} // read by the encoder's goroutine
	err = format(r, func(text io.Reader) error {
		return s.document(ctx, text, func() { tick(r.n.Load()) })
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return 0, fmt.Errorf("encode %s: %w", in.Path, err)
	}
	return r.n.Load(), err
}

// document encodes one document, after the separator if one is due.
func (s *tokenStream) document(ctx context.Context, text io.Reader, tick func()) error {
	if s.sep >= 0 && s.docs > 0 && s.w.Count() > 0 && s.last != s.sep {
		if err := s.w.WriteInts([]int{s.sep}, s.vocab); err != nil {
			return err
		}
		s.last = s.sep
	}
	s.docs++
	return s.enc.EncodeStream(text, func(ids []int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		tick()
		if len(ids) == 0 {
			return nil
		}
		if err := s.w.WriteInts(ids, s.vocab); err != nil {
			return err
		}
		s.last = ids[len(ids)-1]
		return nil
	})
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n.Add(int64(n))
	return n, err
}

// prepareOut creates dir and refuses the shards in it, or deletes them
// with overwrite, so that a data glob never mixes two runs.
func prepareOut(dir string, overwrite bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	var old []string
	for _, prefix := range []string{"train", "val"} {
		m, err := filepath.Glob(filepath.Join(dir, prefix+"_*.bin"))
		if err != nil {
			return fmt.Errorf("output directory %s: %w", dir, err)
		}
		old = append(old, m...)
	}
	if len(old) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%w: %d in %s (e.g. %s)", ErrShardsExist, len(old), dir, filepath.Base(old[0]))
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("overwrite: %w", err)
		}
	}
	slog.Info("removed old shards", "out", dir, "count", len(old))
	return nil
}
