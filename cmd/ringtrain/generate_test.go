package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

// genFixture writes a tokenizer trained on a little text (with
// <|endoftext|>) and a randomly initialised model whose vocabulary is the
// tokenizer's.
func genFixture(t *testing.T, vocab int) (ckpt, tokDir string, cfg model.Config, params []float32, tok *tokenizer.Tokenizer) {
	t.Helper()
	dir := t.TempDir()
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. Café au lait, naïve façade — ünïcödé! ", 20)
	tok, err := tokenizer.Train(tokenizer.DefaultTrainConfig(300), strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tokDir = filepath.Join(dir, "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfg = model.Config{VocabSize: vocab, ContextLength: 16, DModel: 32, NumLayers: 2, NumHeads: 4, DFF: 64, RopeTheta: 10000}
	m, err := model.New(cfg, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(5)
	ckptDir := filepath.Join(dir, "ckpt")
	if err := checkpoint.WriteFile(ckptDir, trainer.ModelFile, func(w io.Writer) error { return model.WriteModel(w, cfg, m.Params) }); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(ckptDir, trainer.ModelFile), tokDir, cfg, m.Params, tok
}

// runGen runs `ringtrain generate args...` with all flags back at their
// defaults first (cobra keeps flag values between Execute calls).
func runGen(args ...string) (string, error) {
	generateCmd.Flags().VisitAll(func(f *pflag.Flag) {
		f.Value.Set(f.DefValue)
		f.Changed = false
	})
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetArgs(append([]string{"generate"}, args...))
	err := rootCmd.Execute()
	return out.String(), err
}

// TestGenerateCommand: greedy output with and without the cache is the text
// of the tokens model.Generate draws (16 tokens of context, 40 new: the
// window slides), stdout holds only that text, and seeds are honoured.
func TestGenerateCommand(t *testing.T) {
	ckpt, tokDir, cfg, params, tok := genFixture(t, 300)
	if tok.VocabSize() != 300 {
		t.Fatalf("tokenizer has %d ids, want 300", tok.VocabSize())
	}
	const prompt = "The quick brown"
	common := []string{"--checkpoint", ckpt, "--tokenizer", tokDir, "--prompt", prompt, "--max-tokens", "40"}

	// the expected greedy text, straight from the model package
	d, err := model.NewDecoder(cfg, params, cfg.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, id := range tok.Encode(prompt) {
		ids = append(ids, int32(id))
	}
	greedy, _ := model.NewSampler(model.SamplerConfig{})
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	var want bytes.Buffer
	text := newTextPrinter(&want, tok)
	if _, err := d.Generate(ids, model.GenerateConfig{MaxTokens: 40, Stop: []int32{int32(eot)}}, greedy, text.Token); err != nil {
		t.Fatal(err)
	}
	text.Close()

	for _, extra := range [][]string{{"--temperature", "0"}, {"--temperature", "0", "--no-cache"}, {"--temperature", "0", "--top-k", "7", "--seed", "3"}} {
		got, err := runGen(append(common, extra...)...)
		if err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		if got != want.String() {
			t.Errorf("%v: stdout %q, want %q", extra, got, want.String())
		}
	}
	if len(want.String()) < 10 {
		t.Errorf("greedy text %q is suspiciously short", want.String())
	}

	sample := func(seed string) string {
		out, err := runGen(append(common, "--temperature", "1", "--top-p", "0.95", "--seed", seed)...)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(out) {
			t.Errorf("seed %s: stdout is not valid UTF-8: %q", seed, out)
		}
		return out
	}
	a, b, c := sample("1"), sample("1"), sample("2")
	if a != b {
		t.Errorf("seed 1 twice: %q and %q", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 gave the same text %q", a)
	}
}

func TestGenerateCommandErrors(t *testing.T) {
	ckpt, tokDir, _, _, _ := genFixture(t, 300)
	small, _, _, _, _ := genFixture(t, 100)
	base := []string{"--checkpoint", ckpt, "--tokenizer", tokDir}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{base, "--prompt is required"},
		{append(base, "--prompt", "x", "--temperature", "-1"), "--temperature"},
		{append(base, "--prompt", "x", "--top-p", "2"), "top_p"},
		{append(base, "--prompt", "x", "--max-tokens", "-3"), "--max-tokens"},
		{[]string{"--checkpoint", small, "--tokenizer", tokDir, "--prompt", "x"}, "vocab_size 100"},
		{[]string{"--checkpoint", ckpt, "--tokenizer", "/nonexistent", "--prompt", "x"}, "/nonexistent"},
		{[]string{"--checkpoint", "/nonexistent.safetensors", "--tokenizer", tokDir, "--prompt", "x"}, "/nonexistent"},
	} {
		_, err := runGen(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	// an empty prompt starts from <|endoftext|>
	if _, err := runGen(append(base, "--prompt", "", "--max-tokens", "3")...); err != nil {
		t.Errorf("empty prompt: %v", err)
	}
}

// TestTextPrinter: the text of the tokens, valid UTF-8, with a final
// newline unless empty or already there.
func TestTextPrinter(t *testing.T) {
	tok, err := tokenizer.Train(tokenizer.DefaultTrainConfig(260), strings.NewReader("ab ab ab"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tokens []string // each a single token of tok
		want   string
	}{
		{nil, ""},
		{[]string{"a", "b"}, "ab\n"},
		{[]string{"a", "\n"}, "a\n"},
		{[]string{"\n", "a"}, "\na\n"},
		{[]string{"\xe2", "\x98", "\x83"}, "☃\n"},
		{[]string{"a", "\xe2"}, "a\uFFFD\n"},
	} {
		var out bytes.Buffer
		p := newTextPrinter(&out, tok)
		for _, s := range tc.tokens {
			id, ok := tok.ID([]byte(s))
			if !ok {
				t.Fatalf("%q is not a token", s)
			}
			if err := p.Token(int32(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("tokens %q: printed %q, want %q", tc.tokens, out.String(), tc.want)
		}
	}
}
