package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

var generateFlags struct {
	checkpoint, tokenizer, prompt string
	maxTokens                     int
	temperature, topP             float64
	topK                          int
	seed                          uint64
	noCache                       bool
}

var generateCmd = &cobra.Command{
	Use:   "generate --checkpoint PATH [--tokenizer DIR] --prompt TEXT",
	Short: "Sample a continuation of a prompt with a KV cache",
	Long: `Encodes TEXT with the tokenizer of DIR, runs it through the model in one
batched pass (prefill) that caches every layer's keys and values, then draws
one token at a time against the cache. The generated text (the prompt is not
repeated) goes to stdout as it is produced; bytes of a character split over
tokens are held back until the character is complete, and bytes that can
never form one are written as U+FFFD, so stdout is valid UTF-8. A newline
is added at the end when the text does not end with one. Statistics go to
stderr.

Sampling: --temperature 0 is greedy (the most likely token; --top-k, --top-p
and --seed do not matter). Otherwise logits are divided by the temperature,
--top-k keeps the K most likely tokens (0 = all), then --top-p keeps the
smallest set of the most likely ones whose probability reaches P (1 = all).
The same --seed gives the same text. Generation stops after --max-tokens
tokens or at <|endoftext|> if the tokenizer has it (not printed). An empty
--prompt starts from <|endoftext|>.

Context: the cache holds context_length tokens. A longer prompt keeps its
last context_length tokens. When the context is full, the window slides:
the last context_length/2 tokens are run again as a new prefill (at
positions 0..) and generation goes on, so it never stops for lack of
context.

--checkpoint accepts a run dir (its newest committed checkpoint), a
checkpoint dir, a .safetensors file, or a Hugging Face Llama directory.
Without --tokenizer, the tokenizer is the one kept with the checkpoint (its
directory holds vocab.json and merges.txt), or else the one of the job in its
state.json (the job's tokenizer: key, or the tokenizer/ directory that
ringtrain prepare writes beside the shards). --no-cache recomputes the whole
window for every token (same tokens up to float rounding; for measuring
what the cache saves).`,
	Example: `  ringtrain generate --checkpoint runs/shakespeare --prompt "ROMEO:" --max-tokens 200 --temperature 0.8 --top-k 50`,
	Args:    cobra.NoArgs,
	RunE:    runGenerate,
}

func init() {
	fl := generateCmd.Flags()
	f := &generateFlags
	fl.StringVar(&f.checkpoint, "checkpoint", "", "run dir, checkpoint dir, .safetensors file or Hugging Face dir (required)")
	fl.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer dir with vocab.json and merges.txt (default: the one kept with the checkpoint or named by its job)")
	fl.StringVar(&f.prompt, "prompt", "", "text to continue (required; empty starts from <|endoftext|>)")
	fl.IntVar(&f.maxTokens, "max-tokens", 256, "new tokens at most")
	fl.Float64Var(&f.temperature, "temperature", 1.0, "softmax temperature; 0 = greedy")
	fl.IntVar(&f.topK, "top-k", 0, "sample among the K most likely tokens; 0 = all")
	fl.Float64Var(&f.topP, "top-p", 1.0, "nucleus sampling: the most likely tokens up to probability P; 1 = all")
	fl.Uint64Var(&f.seed, "seed", 1337, "random seed of the sampler")
	fl.BoolVar(&f.noCache, "no-cache", false, "recompute the whole context for every token (benchmark baseline)")
	rootCmd.AddCommand(generateCmd)
}

func runGenerate(cmd *cobra.Command, args []string) error {
	f := generateFlags
	switch {
	case f.checkpoint == "":
		return fmt.Errorf("--checkpoint is required")
	case !cmd.Flags().Changed("prompt"):
		return fmt.Errorf("--prompt is required (an empty --prompt \"\" starts from %s)", tokenizer.EndOfText)
	case f.maxTokens < 0:
		return fmt.Errorf("--max-tokens %d: must be ≥ 0", f.maxTokens)
	}
	scfg := model.SamplerConfig{Temperature: f.temperature, TopK: f.topK, TopP: f.topP, Seed: f.seed}
	if err := scfg.Validate(); err != nil {
		return fmt.Errorf("--temperature %v --top-k %d --top-p %v: %w", f.temperature, f.topK, f.topP, err)
	}
	sampler, err := model.NewSampler(scfg)
	if err != nil {
		return err
	}

	file, err := trainer.ModelPath(f.checkpoint)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	tokDir := f.tokenizer
	if tokDir == "" {
		if tokDir, err = trainer.FindTokenizer(file); err != nil {
			return fmt.Errorf("--tokenizer not given and none found with the checkpoint: %w", err)
		}
		slog.Debug("tokenizer found with the checkpoint", "dir", tokDir)
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return fmt.Errorf("--tokenizer %s: %w", tokDir, err)
	}
	cfg, params, err := trainer.LoadModel(file)
	if err != nil {
		return err
	}
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("--tokenizer %s has %d token ids, more than the vocab_size %d of %s", tokDir, tok.VocabSize(), cfg.VocabSize, file)
	}
	if tok.VocabSize() < cfg.VocabSize {
		slog.Warn("the tokenizer knows fewer ids than the model; sampling only those", "tokenizer_vocab", tok.VocabSize(), "model_vocab", cfg.VocabSize)
	}
	var stop []int32
	if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
		stop = []int32{int32(id)}
	}
	ids := tok.Encode(f.prompt)
	if len(ids) == 0 {
		if stop == nil {
			return fmt.Errorf("--prompt is empty and tokenizer %s has no %s to start from", tokDir, tokenizer.EndOfText)
		}
		ids = []int{int(stop[0])}
	}
	prompt := make([]int32, len(ids))
	for i, id := range ids {
		prompt[i] = int32(id)
	}

	dec, err := model.NewDecoder(cfg, params, cfg.ContextLength)
	if err != nil {
		return err
	}
	slog.Info("generate", "model", f.checkpoint, "params", cfg.NumParams(), "context", cfg.ContextLength,
		"prompt_tokens", len(prompt), "cache", !f.noCache)
	if len(prompt) > cfg.ContextLength {
		slog.Warn("prompt longer than the context; keeping its last tokens", "prompt_tokens", len(prompt), "context", cfg.ContextLength)
	}

	text := newTextPrinter(cmd.OutOrStdout(), tok)
	st, err := dec.Generate(prompt, model.GenerateConfig{MaxTokens: f.maxTokens, Stop: stop, Vocab: tok.VocabSize(), NoCache: f.noCache},
		sampler, text.Token)
	if err != nil {
		return fmt.Errorf("write generated text: %w", err)
	}
	if err := text.Close(); err != nil {
		return fmt.Errorf("write generated text: %w", err)
	}
	slog.Info("generated",
		"prompt_tokens", st.PromptTokens,
		"prefill_s", fmt.Sprintf("%.3f", st.Prefill.Seconds()),
		"prefill_tokens_per_s", fmt.Sprintf("%.1f", float64(st.PromptTokens)/st.Prefill.Seconds()),
		"new_tokens", st.NewTokens,
		"decode_s", fmt.Sprintf("%.3f", st.Decode.Seconds()),
		"decode_tokens_per_s", fmt.Sprintf("%.1f", float64(st.NewTokens)/st.Decode.Seconds()),
		"stopped_at_endoftext", st.Stopped, "window_slides", st.Slides, "cache", !f.noCache)
	return nil
}

// textPrinter writes the text of generated tokens to w as it comes, as
// valid UTF-8 (tokenizer.UTF8Writer), and ends it with a newline unless it
// is empty or ends with one.
type textPrinter struct {
	w     io.Writer
	tok   *tokenizer.Tokenizer
	text  *tokenizer.UTF8Writer
	last  byte // the last byte of the last token
	wrote bool
}

func newTextPrinter(w io.Writer, tok *tokenizer.Tokenizer) *textPrinter {
	return &textPrinter{w: w, tok: tok, text: tokenizer.NewUTF8Writer(w)}
}

// Token writes the bytes of token id.
func (p *textPrinter) Token(id int32) error {
	b := p.tok.Token(int(id))
	if len(b) > 0 {
		p.last, p.wrote = b[len(b)-1], true
	}
	_, err := p.text.Write(b)
	return err
}

// Close writes what the UTF8Writer holds back and the final newline. It
// does not close w. ('\n' is a whole character, so the text ends with one
// exactly when the last token does.)
func (p *textPrinter) Close() error {
	if err := p.text.Close(); err != nil {
		return err
	}
	if p.wrote && p.last != '\n' {
		_, err := io.WriteString(p.w, "\n")
		return err
	}
	return nil
}
