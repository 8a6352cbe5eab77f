package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/shard"
	"github.com/ringtrain/ringtrain/tokenizer"
)

const prepText = `First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?
`

// testTokenizer trains a small BPE tokenizer with <|endoftext|> (id 0) and
// saves it; it returns the directory and the tokenizer.
func testTokenizer(t *testing.T, special ...string) (string, *tokenizer.Tokenizer) {
	t.Helper()
	cfg := tokenizer.TrainConfig{VocabSize: 300, Special: special}
	tok, err := tokenizer.Train(cfg, strings.NewReader(strings.Repeat(prepText, 3)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir, tok
}

func writeInputs(t *testing.T, texts ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, s := range texts {
		p := filepath.Join(dir, string(rune('a'+i))+".txt")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// readSplit concatenates the tokens of the given shards, checking each holds
// at most max tokens.
func readSplit(t *testing.T, paths []string, vocab int, max int64) []int {
	t.Helper()
	var out []int
	for _, p := range paths {
		s, err := shard.Open(p, vocab)
		if err != nil {
			t.Fatal(err)
		}
		if int64(s.Len()) > max {
			t.Errorf("%s: %d tokens, more than --shard-tokens %d", p, s.Len(), max)
		}
		for _, v := range s.Tokens() {
			out = append(out, int(v))
		}
		s.Close()
	}
	return out
}

func TestPrepareStream(t *testing.T) {
	tokDir, tok := testTokenizer(t, tokenizer.EndOfText)
	eot, ok := tok.SpecialID(tokenizer.EndOfText)
	if !ok {
		t.Fatal("no <|endoftext|>")
	}
	texts := []string{
		prepText + "<|endoftext|>All:\nSpeak.\n", // holds a separator inside
		"",                                       // empty: adds no separator
		"Resolved. resolved.\n<|endoftext|>",     // ends with one: none added
		"First, you know Caius Marcius is chief enemy to the people.\n",
	}
	// The expected stream: enc(a) eot enc(c) enc(d).
	var want []int
	want = append(want, tok.Encode(texts[0])...)
	want = append(want, eot)
	want = append(want, tok.Encode(texts[2])...)
	want = append(want, tok.Encode(texts[3])...)
	if want[len(want)-len(tok.Encode(texts[3]))-1] != eot {
		t.Fatal("test text c does not end with the separator")
	}

	loaded, err := loadPrepareTokenizer(tokDir, tokenizer.EndOfText)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		frac        float64
		shardTokens int64
	}{{0.1, 1000}, {0.25, 7}, {0, 10}, {0.5, 1}}
	for _, tc := range tests {
		out := t.TempDir()
		cfg := prepareConfig{Inputs: writeInputs(t, texts...), Out: out, ValFraction: tc.frac,
			ShardTokens: tc.shardTokens, Separator: tokenizer.EndOfText}
		res, err := runPrepare(context.Background(), cfg, loaded, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(want))
		nv := valTokens(n, tc.frac)
		if res.Tokens != n || res.ValTokens != nv || res.TrainTokens != n-nv {
			t.Fatalf("F %v: tokens %d/%d/%d, want %d/%d/%d", tc.frac, res.Tokens, res.TrainTokens, res.ValTokens, n, n-nv, nv)
		}
		if tc.frac > 0 && nv < 1 {
			t.Fatalf("F %v: no val tokens", tc.frac)
		}
		if got := int64(len(res.TrainShards)); got != (n-nv+tc.shardTokens-1)/tc.shardTokens {
			t.Errorf("F %v: %d train shards", tc.frac, got)
		}
		train := readSplit(t, res.TrainShards, tok.VocabSize(), tc.shardTokens)
		val := readSplit(t, res.ValShards, tok.VocabSize(), tc.shardTokens)
		if !slices.Equal(append(train, val...), want) {
			t.Fatalf("F %v: shards hold %v\nwant %v", tc.frac, append(train, val...), want)
		}
		if !slices.Equal(val, want[n-nv:]) {
			t.Fatalf("F %v: val is not the last %d tokens", tc.frac, nv)
		}
		// Only shards remain, named train_NNNNNN.bin / val_NNNNNN.bin.
		entries, _ := os.ReadDir(out)
		if len(entries) != len(res.TrainShards)+len(res.ValShards) {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("out holds %v", names)
		}
		if res.TrainShards[0] != filepath.Join(out, "train_000000.bin") ||
			(nv > 0 && res.ValShards[0] != filepath.Join(out, "val_000000.bin")) {
			t.Fatalf("names %v %v", res.TrainShards, res.ValShards)
		}
		if st, _ := os.Stat(res.TrainShards[0]); st.Mode().Perm() != 0o644 {
			t.Errorf("shard mode %v", st.Mode())
		}
	}
}

func TestPrepareNoSeparator(t *testing.T) {
	_, tok := testTokenizer(t)
	texts := []string{"All:\n", "Speak.\n"}
	cfg := prepareConfig{Inputs: writeInputs(t, texts...), Out: t.TempDir(), ValFraction: 0.5, ShardTokens: 100}
	res, err := runPrepare(context.Background(), cfg, tok, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := append(tok.Encode(texts[0]), tok.Encode(texts[1])...)
	got := append(readSplit(t, res.TrainShards, tok.VocabSize(), 100), readSplit(t, res.ValShards, tok.VocabSize(), 100)...)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// bigVocab pretends to be a tokenizer with more ids than uint16 holds.
type bigVocab struct{ streamEncoder }

func (bigVocab) VocabSize() int { return 70000 }

func TestPrepareErrors(t *testing.T) {
	tokDir, tok := testTokenizer(t, tokenizer.EndOfText)
	plainDir, plain := testTokenizer(t)
	inputs := writeInputs(t, prepText)
	base := prepareConfig{Inputs: inputs, Out: t.TempDir(), ValFraction: 0.1, ShardTokens: 1000, Separator: tokenizer.EndOfText}

	tests := []struct {
		name  string
		edit  func(*prepareConfig)
		enc   streamEncoder
		inMsg string
	}{
		{"no inputs", func(c *prepareConfig) { c.Inputs = nil }, tok, "--input"},
		{"no out", func(c *prepareConfig) { c.Out = "" }, tok, "--out"},
		{"val fraction 1", func(c *prepareConfig) { c.ValFraction = 1 }, tok, "--val-fraction 1"},
		{"val fraction negative", func(c *prepareConfig) { c.ValFraction = -0.1 }, tok, "--val-fraction -0.1"},
		{"shard tokens 0", func(c *prepareConfig) { c.ShardTokens = 0 }, tok, "--shard-tokens 0"},
		{"missing input", func(c *prepareConfig) { c.Inputs = []string{inputs[0], "/nonexistent/x.txt"} }, tok, "/nonexistent/x.txt"},
		{"input is a directory", func(c *prepareConfig) { c.Inputs = []string{t.TempDir()} }, tok, "not a regular file"},
		{"vocab too big", nil, bigVocab{tok}, "70000"},
		{"separator unknown", nil, plain, `"<|endoftext|>"`},
		{"too few tokens", func(c *prepareConfig) { c.Inputs = writeInputs(t, "A"); c.ValFraction = 0.5 }, tok, "too few"},
		{"empty inputs", func(c *prepareConfig) { c.Inputs = writeInputs(t, "", "") }, tok, "0 tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Out = t.TempDir()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			_, err := runPrepare(context.Background(), cfg, tc.enc, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.inMsg) {
				t.Fatalf("error %v, want one containing %q", err, tc.inMsg)
			}
		})
	}

	t.Run("separator not in tokenizer", func(t *testing.T) {
		_, err := loadPrepareTokenizer(plainDir, tokenizer.EndOfText)
		if err == nil || !strings.Contains(err.Error(), plainDir) || !strings.Contains(err.Error(), "--special") {
			t.Fatalf("error %v", err)
		}
		if _, err := loadPrepareTokenizer(plainDir, ""); err != nil {
			t.Fatalf("--special \"\": %v", err)
		}
		if _, err := loadPrepareTokenizer(tokDir, tokenizer.EndOfText); err != nil {
			t.Fatal(err)
		}
		if _, err := loadPrepareTokenizer(t.TempDir(), ""); err == nil {
			t.Fatal("empty tokenizer dir accepted")
		}
	})

	t.Run("existing shards", func(t *testing.T) {
		cfg := base
		cfg.Out = t.TempDir()
		stale := filepath.Join(cfg.Out, "train_000009.bin")
		if err := shard.WriteFile(stale, []uint16{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := runPrepare(context.Background(), cfg, tok, io.Discard); err == nil || !strings.Contains(err.Error(), "--overwrite") {
			t.Fatalf("error %v", err)
		}
		cfg.Overwrite = true
		if _, err := runPrepare(context.Background(), cfg, tok, io.Discard); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Fatalf("stale shard survived --overwrite: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cfg := base
		cfg.Out = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := runPrepare(ctx, cfg, tok, io.Discard); err == nil {
			t.Fatal("no error")
		}
		if entries, _ := os.ReadDir(cfg.Out); len(entries) != 0 {
			t.Fatalf("cancelled run left %d files", len(entries))
		}
	})
}

func TestPrepareCommand(t *testing.T) {
	tokDir, _ := testTokenizer(t, tokenizer.EndOfText)
	inputs := writeInputs(t, prepText, prepText)
	out := t.TempDir()
	var stdout bytes.Buffer
	rootCmd.SetOut(&stdout)
	rootCmd.SetErr(io.Discard)
	defer rootCmd.SetOut(nil)
	defer rootCmd.SetErr(nil)
	rootCmd.SetArgs([]string{"prepare", "--tokenizer", tokDir, "--input", inputs[0], "--out", out,
		"--val-fraction", "0.2", "--shard-tokens", "50", inputs[1]})
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	for _, sub := range []string{"tokens=", "train_tokens=", "val_tokens=", "train_shards=", "val_shards=", "bytes_per_token="} {
		if !strings.Contains(last, sub) {
			t.Errorf("summary %q lacks %q", last, sub)
		}
	}
	ds, err := shard.OpenGlob(filepath.Join(out, "train_*.bin"), 300, 16)
	if err != nil {
		t.Fatal(err)
	}
	ds.Close()
	if _, err := shard.OpenGlob(filepath.Join(out, "val_*.bin"), 300, 16); err != nil {
		t.Fatal(err)
	}
	// the tokenizer travels with the shards
	j, err := job.Parse([]byte("data: {train: "+filepath.Join(out, "train_*.bin")+"}\neval: {every: 0}\nmodel: {vocab_size: 300}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := j.TokenizerDir(), filepath.Join(out, "tokenizer"); got != want {
		t.Fatalf("the job finds tokenizer %q, want %q", got, want)
	}
	if tok, err := tokenizer.Load(j.TokenizerDir()); err != nil || tok.VocabSize() != 300 {
		t.Fatalf("saved tokenizer: %v", err)
	}
}

// TestPrepareGPT2Shakespeare: the GPT-2 tokenizer gives the well-known
// 338025 tokens for tiny Shakespeare (nanoGPT's shakespeare prepare.py
// prints 301,966 + 36,059 for its character-level split of the same file).
func TestPrepareGPT2Shakespeare(t *testing.T) {
	tokDir, input := "../../tokenizer/testdata/gpt2", "../../data/tinyshakespeare.txt"
	for _, p := range []string{tokDir, input} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
	}
	if testing.Short() {
		t.Skip("-short")
	}
	tok, err := loadPrepareTokenizer(tokDir, tokenizer.EndOfText)
	if err != nil {
		t.Fatal(err)
	}
	cfg := prepareConfig{Inputs: []string{input}, Out: t.TempDir(), ValFraction: 0.1, ShardTokens: 100_000, Separator: tokenizer.EndOfText}
	res, err := runPrepare(context.Background(), cfg, tok, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tokens != 338025 || res.ValTokens != 33803 || len(res.TrainShards) != 4 || len(res.ValShards) != 1 {
		t.Fatalf("tokens %d val %d shards %d+%d, want 338025, 33803, 4+1", res.Tokens, res.ValTokens, len(res.TrainShards), len(res.ValShards))
	}
	// The first tokens of "First Citizen:\nBefore we proceed" under GPT-2.
	s, err := shard.Open(res.TrainShards[0], tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := s.Tokens()[:8], []uint16{5962, 22307, 25, 198, 8421, 356, 5120, 597}; !slices.Equal(got, want) {
		t.Errorf("first tokens %v, want %v", got, want)
	}
}
