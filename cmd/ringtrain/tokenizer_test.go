package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// runTokenizer runs `ringtrain tokenizer ARGS` on a fresh command tree.
func runTokenizer(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newTokenizerCmd()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

const gpt2TestDir = "../../tokenizer/testdata/gpt2"

func TestTokenizerCommands(t *testing.T) {
	out, err := runTokenizer(t, "Hello, world!<|endoftext|>", "encode", "--tokenizer", gpt2TestDir)
	if err != nil || out != "15496 11 995 0 50256\n" {
		t.Fatalf("encode: %q, %v", out, err)
	}
	out, err = runTokenizer(t, " 15496 11\n995\t0 ", "decode", "--tokenizer", gpt2TestDir)
	if err != nil || out != "Hello, world!" {
		t.Fatalf("decode: %q, %v", out, err)
	}

	dir := filepath.Join(t.TempDir(), "tok")
	out, err = runTokenizer(t, "", "train", "--input", "../../tokenizer/testdata/corpus.en", "--vocab-size", "300",
		"--special", "<|endoftext|>", "--special", "<pad>", "--out", dir)
	if err != nil || !strings.Contains(out, "vocab_size=300") {
		t.Fatalf("train: %q, %v", out, err)
	}
	text := "iron cement <pad>is a ready<|endoftext|> \xff\xfe for use ☃"
	ids, err := runTokenizer(t, text, "encode", "--tokenizer", dir)
	if err != nil || strings.Count(ids, "\n") != 1 || strings.Contains(ids, "  ") {
		t.Fatalf("encode: %q, %v", ids, err)
	}
	if !strings.Contains(" "+ids, " 1 ") { // <pad> has id 1
		t.Errorf("encode: <pad> (id 1) missing from %q", ids)
	}
	raw, err := runTokenizer(t, ids, "decode", "--tokenizer", dir, "--raw")
	if err != nil || raw != text {
		t.Errorf("decode --raw: %q, %v; want %q", raw, err, text)
	}
	printed, err := runTokenizer(t, ids, "decode", "--tokenizer", dir)
	if want := strings.ToValidUTF8(text, "\uFFFD\uFFFD"); err != nil || printed != want {
		t.Errorf("decode: %q, %v; want %q", printed, err, want)
	}
	// Characters split across tokens and across the decoder's batches of ids.
	long := strings.Repeat("a☃ ", 3000)
	ids, err = runTokenizer(t, long, "encode", "--tokenizer", dir)
	if err != nil {
		t.Fatal(err)
	}
	if printed, err := runTokenizer(t, ids, "decode", "--tokenizer", dir); err != nil || printed != long {
		t.Errorf("decode of %d ids: %v, text equal: %v", strings.Count(ids, " ")+1, err, printed == long)
	}
}

func TestTokenizerCommandErrors(t *testing.T) {
	tests := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"encode"}, "", "--tokenizer"},
		{[]string{"encode", "--tokenizer", "/nonexistent"}, "", "/nonexistent"},
		{[]string{"decode", "--tokenizer", gpt2TestDir}, "1 2 x", "token 3"},
		{[]string{"decode", "--tokenizer", gpt2TestDir}, "50257", "50257"},
		{[]string{"train", "--out", "x"}, "", "--input"},
		{[]string{"train", "--input", "a.txt", "--out", "x", "--vocab-size", "100"}, "", "--vocab-size 100"},
	}
	for _, tc := range tests {
		_, err := runTokenizer(t, tc.stdin, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
