package main

import (
	"bytes"
	"io"
	"math/rand/v2"
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

// TestUTF8Writer: after every write, exactly the complete characters so far
// have been passed on; invalid bytes become U+FFFD; Close flushes an
// incomplete tail as U+FFFD and adds the final newline.
func TestUTF8Writer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		after  []string // output after each write
		final  string   // output after Close
	}{
		{"ascii", []string{"ab", "c"}, []string{"ab", "abc"}, "abc\n"},
		{"split 2-byte", []string{"h\xc3", "\xa9llo"}, []string{"h", "héllo"}, "héllo\n"},
		{"split 4-byte", []string{"\xf0", "\x9f", "\x98", "\x80!"}, []string{"", "", "", "😀!"}, "😀!\n"},
		{"whole then split", []string{"€\xe2\x82", "\xac"}, []string{"€", "€€"}, "€€\n"},
		{"invalid byte", []string{"a\xffb"}, []string{"a\uFFFDb"}, "a\uFFFDb\n"},
		{"stray continuation", []string{"\x80a"}, []string{"\uFFFDa"}, "\uFFFDa\n"},
		{"broken sequence", []string{"\xe2", "A"}, []string{"", "\uFFFDA"}, "\uFFFDA\n"},
		{"surrogate", []string{"\xed\xa0\x80"}, []string{"\uFFFD\uFFFD\uFFFD"}, "\uFFFD\uFFFD\uFFFD\n"},
		{"incomplete at end", []string{"ab\xe2\x82"}, []string{"ab"}, "ab\uFFFD\n"},
		{"real U+FFFD", []string{"\xef\xbf", "\xbd"}, []string{"", "\uFFFD"}, "\uFFFD\n"},
		{"ends with newline", []string{"a\n"}, []string{"a\n"}, "a\n"},
		{"nothing", nil, nil, ""},
	} {
		var buf bytes.Buffer
		w := newUTF8Writer(&buf)
		for i, s := range tc.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
			if buf.String() != tc.after[i] {
				t.Errorf("%s: after write %d: %q, want %q", tc.name, i, buf.String(), tc.after[i])
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.final || !utf8.Valid(buf.Bytes()) {
			t.Errorf("%s: final %q, want %q", tc.name, buf.String(), tc.final)
		}
	}
}

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
	w := newUTF8Writer(&want)
	if _, err := d.Generate(ids, model.GenerateConfig{MaxTokens: 40, Stop: []int32{int32(eot)}}, greedy, func(id int32) error {
		_, err := w.Write(tok.Token(int(id)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.Close()

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

// TestUTF8WriterSplits: however a byte string is cut into writes, the text
// is the same as from one write, and after every write the output so far
// is valid UTF-8 and a prefix of the final text.
func TestUTF8WriterSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", " ", "é", "€", "😀", "\n", "\xff", "\x80", "\xe2\x82", "\xf0\x9f", "\xed\xa0\x80", "\uFFFD"}
	for range 500 {
		var in []byte
		for range rng.IntN(20) {
			in = append(in, pieces[rng.IntN(len(pieces))]...)
		}
		var whole bytes.Buffer
		w := newUTF8Writer(&whole)
		w.Write(in)
		w.Close()

		var split bytes.Buffer
		w = newUTF8Writer(&split)
		for rest := in; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			w.Write(rest[:n])
			rest = rest[n:]
			if !utf8.Valid(split.Bytes()) || !strings.HasPrefix(whole.String(), split.String()) {
				t.Fatalf("input %q: after a write %q, not valid or not a prefix of %q", in, split.String(), whole.String())
			}
		}
		w.Close()
		if split.String() != whole.String() {
			t.Fatalf("input %q: split writes %q, one write %q", in, split.String(), whole.String())
		}
	}
}
