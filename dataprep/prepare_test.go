package dataprep

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// testTokenizer trains a small BPE tokenizer with the given special tokens
// (ids 0…) and saves it; it returns the directory and the tokenizer.
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

// writeInputs writes the texts to files a.txt, b.txt, … and returns them
// as Inputs.
func writeInputs(t *testing.T, texts ...string) []Input {
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
	ins, err := Inputs(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return ins
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
			t.Errorf("%s: %d tokens, more than ShardTokens %d", p, s.Len(), max)
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

	loaded, err := LoadTokenizer(tokDir, tokenizer.EndOfText)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		frac        float64
		shardTokens int64
	}{{0.1, 1000}, {0.25, 7}, {0, 10}, {0.5, 1}}
	for _, tc := range tests {
		out := t.TempDir()
		cfg := Config{Inputs: writeInputs(t, texts...), Out: out, ValFraction: tc.frac,
			ShardTokens: tc.shardTokens, Separator: tokenizer.EndOfText}
		res, err := Prepare(context.Background(), cfg, loaded)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(want))
		nv := ValTokens(n, tc.frac)
		if res.Tokens != n || res.ValTokens != nv || res.TrainTokens != n-nv {
			t.Fatalf("F %v: tokens %d/%d/%d, want %d/%d/%d", tc.frac, res.Tokens, res.TrainTokens, res.ValTokens, n, n-nv, nv)
		}
		if tc.frac > 0 && nv < 1 {
			t.Fatalf("F %v: no val tokens", tc.frac)
		}
		if got := int64(len(res.TrainShards)); got != (n-nv+tc.shardTokens-1)/tc.shardTokens {
			t.Errorf("F %v: %d train shards", tc.frac, got)
		}
		if res.InputBytes != int64(len(strings.Join(texts, ""))) {
			t.Errorf("InputBytes %d, want %d", res.InputBytes, len(strings.Join(texts, "")))
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
	cfg := Config{Inputs: writeInputs(t, texts...), Out: t.TempDir(), ValFraction: 0.5, ShardTokens: 100}
	res, err := Prepare(context.Background(), cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := append(tok.Encode(texts[0]), tok.Encode(texts[1])...)
	got := append(readSplit(t, res.TrainShards, tok.VocabSize(), 100), readSplit(t, res.ValShards, tok.VocabSize(), 100)...)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// lines is a Format with one document a line (the newline dropped), like
// JSON lines would be.
func lines(r io.Reader, doc func(io.Reader) error) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if err := doc(strings.NewReader(sc.Text())); err != nil {
			return err
		}
	}
	return sc.Err()
}

// TestPrepareFormat: the separator goes between the documents a Format
// yields, inside a file as between files, and progress counts file bytes.
func TestPrepareFormat(t *testing.T) {
	_, tok := testTokenizer(t, tokenizer.EndOfText)
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	ins := writeInputs(t, "All:\nSpeak.\n", "Resolved.\n")
	ins[0].Format = lines
	var encoded, total int64
	cfg := Config{Inputs: ins, Out: t.TempDir(), ShardTokens: 100, Separator: tokenizer.EndOfText,
		Progress: func(stage string, done, n int64) {
			if stage == "encode" {
				encoded, total = done, n
			}
		}}
	res, err := Prepare(context.Background(), cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	want = append(want, tok.Encode("All:")...)
	want = append(want, eot)
	want = append(want, tok.Encode("Speak.")...)
	want = append(want, eot)
	want = append(want, tok.Encode("Resolved.\n")...)
	if got := readSplit(t, res.TrainShards, tok.VocabSize(), 100); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if encoded != 22 || total != 22 {
		t.Errorf("encode progress ended at %d of %d bytes, want 22 of 22", encoded, total)
	}
}

// TestPrepareProgress: "encode" then "write", each from 0 to its total
// without going back.
func TestPrepareProgress(t *testing.T) {
	_, tok := testTokenizer(t, tokenizer.EndOfText)
	ins := writeInputs(t, strings.Repeat(prepText, 40), prepText)
	type call struct {
		stage       string
		done, total int64
	}
	var calls []call
	cfg := Config{Inputs: ins, Out: t.TempDir(), ValFraction: 0.2, ShardTokens: 300, Separator: tokenizer.EndOfText,
		Progress: func(stage string, done, total int64) { calls = append(calls, call{stage, done, total}) }}
	res, err := Prepare(context.Background(), cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string]int64{"encode": res.InputBytes, "write": res.Tokens}
	var stages []string
	for i, c := range calls {
		if i == 0 || c.stage != calls[i-1].stage {
			stages = append(stages, c.stage)
			if c.done != 0 {
				t.Errorf("stage %s starts at %d", c.stage, c.done)
			}
		} else if c.done < calls[i-1].done {
			t.Errorf("stage %s goes back from %d to %d", c.stage, calls[i-1].done, c.done)
		}
		if c.total != totals[c.stage] || c.done > c.total {
			t.Errorf("call %+v: total want %d", c, totals[c.stage])
		}
	}
	if !slices.Equal(stages, []string{"encode", "write"}) {
		t.Fatalf("stages %v", stages)
	}
	for i, c := range calls {
		if i == len(calls)-1 || calls[i+1].stage != c.stage {
			if c.done != c.total {
				t.Errorf("stage %s ends at %d of %d", c.stage, c.done, c.total)
			}
		}
	}
	if n := len(res.TrainShards) + len(res.ValShards); len(calls) < n+4 {
		t.Errorf("%d progress calls for %d shards", len(calls), n)
	}
}

// bigVocab pretends to be a tokenizer with more ids than uint16 holds.
type bigVocab struct{ Encoder }

func (bigVocab) VocabSize() int { return 70000 }

func TestPrepareErrors(t *testing.T) {
	_, tok := testTokenizer(t, tokenizer.EndOfText)
	_, plain := testTokenizer(t)
	inputs := writeInputs(t, prepText)
	base := Config{Inputs: inputs, Out: t.TempDir(), ValFraction: 0.1, ShardTokens: 1000, Separator: tokenizer.EndOfText}

	tests := []struct {
		name  string
		edit  func(*Config)
		enc   Encoder
		inMsg string
	}{
		{"no inputs", func(c *Config) { c.Inputs = nil }, tok, "no Inputs"},
		{"no out", func(c *Config) { c.Out = "" }, tok, "no Out"},
		{"val fraction 1", func(c *Config) { c.ValFraction = 1 }, tok, "ValFraction 1"},
		{"val fraction negative", func(c *Config) { c.ValFraction = -0.1 }, tok, "ValFraction -0.1"},
		{"shard tokens 0", func(c *Config) { c.ShardTokens = 0 }, tok, "ShardTokens 0"},
		{"input gone", func(c *Config) { c.Inputs = append(c.Inputs, Input{Path: "/nonexistent/x.txt"}) }, tok, "/nonexistent/x.txt"},
		{"vocab too big", nil, bigVocab{tok}, "70000"},
		{"separator unknown", nil, plain, `"<|endoftext|>"`},
		{"too few tokens", func(c *Config) { c.Inputs = writeInputs(t, "A"); c.ValFraction = 0.5 }, tok, "too few"},
		{"empty inputs", func(c *Config) { c.Inputs = writeInputs(t, "", "") }, tok, "0 tokens"},
		{"format error", func(c *Config) {
			c.Inputs = writeInputs(t, "x")
			c.Inputs[0].Format = func(io.Reader, func(io.Reader) error) error { return errors.New("bad line 3") }
		}, tok, "bad line 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Out = t.TempDir()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			_, err := Prepare(context.Background(), cfg, tc.enc)
			if err == nil || !strings.Contains(err.Error(), tc.inMsg) {
				t.Fatalf("error %v, want one containing %q", err, tc.inMsg)
			}
			if entries, _ := os.ReadDir(cfg.Out); len(entries) != 0 {
				t.Errorf("failed run left %d files", len(entries))
			}
		})
	}

	t.Run("existing shards", func(t *testing.T) {
		cfg := base
		cfg.Out = t.TempDir()
		stale := filepath.Join(cfg.Out, "train_000009.bin")
		if err := shard.WriteFile(stale, []uint16{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := Prepare(context.Background(), cfg, tok); !errors.Is(err, ErrShardsExist) || !strings.Contains(err.Error(), "train_000009.bin") {
			t.Fatalf("error %v", err)
		}
		cfg.Overwrite = true
		if _, err := Prepare(context.Background(), cfg, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Fatalf("stale shard survived Overwrite: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cfg := base
		cfg.Out = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Prepare(ctx, cfg, tok); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if entries, _ := os.ReadDir(cfg.Out); len(entries) != 0 {
			t.Fatalf("cancelled run left %d files", len(entries))
		}
	})
}

func TestInputs(t *testing.T) {
	ins := writeInputs(t, "abc", "")
	if len(ins) != 2 || ins[0].Size != 3 || ins[1].Size != 0 || ins[0].Format == nil {
		t.Fatalf("inputs %+v", ins)
	}
	for _, tc := range []struct {
		path, inMsg string
	}{
		{"/nonexistent/x.txt", "/nonexistent/x.txt"},
		{t.TempDir(), "a directory without .txt"},
	} {
		if _, err := Inputs(ins[0].Path, tc.path); err == nil || !strings.Contains(err.Error(), tc.inMsg) {
			t.Errorf("Inputs(%s): error %v, want one containing %q", tc.path, err, tc.inMsg)
		}
	}
}

func TestLoadTokenizer(t *testing.T) {
	tokDir, _ := testTokenizer(t, tokenizer.EndOfText)
	plainDir, _ := testTokenizer(t)
	if _, err := LoadTokenizer(plainDir, tokenizer.EndOfText); !errors.Is(err, ErrNoSeparator) || !strings.Contains(err.Error(), plainDir) {
		t.Fatalf("separator not in the tokenizer: error %v", err)
	}
	if _, err := LoadTokenizer(plainDir, ""); err != nil {
		t.Fatalf("no separator: %v", err)
	}
	if _, err := LoadTokenizer(tokDir, tokenizer.EndOfText); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenizer(t.TempDir(), ""); err == nil {
		t.Fatal("empty tokenizer dir accepted")
	}

	// A regular vocabulary entry with the separator's bytes becomes special.
	var vocab [][]byte
	for b := range 256 {
		vocab = append(vocab, []byte{byte(b)})
	}
	vocab = append(vocab, []byte("<s>"))
	tok, err := tokenizer.New(vocab, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	withSep, err := LoadTokenizer(dir, "<s>")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := withSep.SpecialID("<s>"); !ok || id != 256 || withSep.VocabSize() != 257 {
		t.Fatalf("<s>: special id %d, %v, vocabulary %d; want 256 of 257", id, ok, withSep.VocabSize())
	}
}

// TestPrepareGPT2Shakespeare: the GPT-2 tokenizer gives the well-known
// 338025 tokens for tiny Shakespeare (nanoGPT's shakespeare prepare.py
// prints 301,966 + 36,059 for its character-level split of the same file).
func TestPrepareGPT2Shakespeare(t *testing.T) {
	tokDir, input := "../tokenizer/testdata/gpt2", "../data/tinyshakespeare.txt"
	for _, p := range []string{tokDir, input} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
	}
	if testing.Short() {
		t.Skip("-short")
	}
	tok, err := LoadTokenizer(tokDir, tokenizer.EndOfText)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := Inputs(input)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Inputs: ins, Out: t.TempDir(), ValFraction: 0.1, ShardTokens: 100_000, Separator: tokenizer.EndOfText}
	res, err := Prepare(context.Background(), cfg, tok)
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
		t.Fatalf("first tokens %v, want %v", got, want)
	}
}

// TestInputKinds: directories expand into their text and JSON-lines files
// (sorted, hidden ones and unknown kinds skipped), .gz is decompressed, and
// each JSON line is a document.
func TestInputKinds(t *testing.T) {
	_, tok := testTokenizer(t, tokenizer.EndOfText)
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	dir := t.TempDir()
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("Speak, speak.\n"))
	zw.Close()
	write("a/c.jsonl", []byte(`{"text": "All:", "id": 1}`+"\n\n"+`{"text": "Resolved."}`+"\n"))
	write("b.txt", []byte("First Citizen:\n"))
	write("d.txt.gz", gz.Bytes())
	write(".hidden.txt", []byte("no"))
	write(".git/x.txt", []byte("no"))
	write("notes.csv", []byte("no"))
	ins, err := Inputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range ins {
		rel, _ := filepath.Rel(dir, in.Path)
		names = append(names, rel)
	}
	if want := []string{"a/c.jsonl", "b.txt", "d.txt.gz"}; !slices.Equal(names, want) {
		t.Fatalf("inputs %v, want %v", names, want)
	}
	res, err := Prepare(context.Background(), Config{Inputs: ins, Out: t.TempDir(), ShardTokens: 100, Separator: tokenizer.EndOfText}, tok)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, d := range []string{"All:", "Resolved.", "First Citizen:\n", "Speak, speak.\n"} {
		if i > 0 {
			want = append(want, eot)
		}
		want = append(want, tok.Encode(d)...)
	}
	if got := readSplit(t, res.TrainShards, tok.VocabSize(), 100); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if res.InputBytes != ins[0].Size+ins[1].Size+int64(gz.Len()) {
		t.Errorf("input bytes %d: not the sizes as stored", res.InputBytes)
	}

	// A custom field, and errors that name the file and the line.
	bad := func(name, body string) Input {
		write(name, []byte(body))
		ins, err := InputOptions{JSONLField: "content"}.Inputs(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return ins[0]
	}
	if _, err := Prepare(context.Background(), Config{Inputs: []Input{bad("ok.jsonl", `{"content": "All:"}`)}, Out: t.TempDir(), ShardTokens: 100}, tok); err != nil {
		t.Errorf("--jsonl-field content: %v", err)
	}
	for _, tc := range []struct {
		in   Input
		want string
	}{
		{bad("e1.jsonl", `{"content": "a"}`+"\n"+`{"text": "b"}`), `e1.jsonl: line 2: no field "content" (choose another with --jsonl-field; the line has text)`},
		{bad("e2.jsonl", `{"content": 3}`), `e2.jsonl: line 1: field "content" is not a string`},
		{bad("e3.jsonl", `[1]`), "e3.jsonl: line 1: not a JSON object"},
		{bad("e4.txt.gz", "plain"), "e4.txt.gz: gzip: "},
	} {
		_, err := Prepare(context.Background(), Config{Inputs: []Input{tc.in}, Out: t.TempDir(), ShardTokens: 100}, tok)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.in.Path, err, tc.want)
		}
	}
}
