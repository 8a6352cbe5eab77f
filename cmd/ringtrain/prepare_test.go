package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/shard"
	"github.com/ringtrain/ringtrain/tokenizer"
)

// runPrepare runs `ringtrain prepare args...` with all flags back at their
// defaults first (cobra keeps flag values between Execute calls) and
// returns the last line on stdout.
func runPrepare(args ...string) (string, error) {
	prepareCmd.Flags().VisitAll(func(f *pflag.Flag) {
		if s, ok := f.Value.(pflag.SliceValue); ok {
			s.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	var stdout bytes.Buffer
	rootCmd.SetOut(&stdout)
	rootCmd.SetErr(io.Discard)
	defer rootCmd.SetOut(nil)
	defer rootCmd.SetErr(nil)
	rootCmd.SetArgs(append([]string{"prepare"}, args...))
	err := rootCmd.Execute()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], err
}

// TestPrepareCommand: the flags reach dataprep.Prepare (its tests check the
// shards' contents), the summary line, and errors that name the flag to use.
func TestPrepareCommand(t *testing.T) {
	dir := t.TempDir()
	var inputs []string
	for _, name := range []string{"a.txt", "b.txt"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("First Citizen:\nBefore we proceed any further, hear me speak.\n", 20)), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
	}
	out := t.TempDir()
	last, err := runPrepare("--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", out,
		"--val-fraction", "0.2", "--shard-tokens", "100", inputs[1])
	if err != nil {
		t.Fatal(err)
	}
	// 2×20×15 tokens and a separator; the last ⌈0.2·601⌉ = 121 are val.
	if want := "tokens=601 train_tokens=480 val_tokens=121 train_shards=5 val_shards=2 bytes_per_token=4.0599"; last != want {
		t.Errorf("summary %q, want %q", last, want)
	}
	for _, glob := range []string{"train_*.bin", "val_*.bin"} {
		ds, err := shard.OpenGlob(filepath.Join(out, glob), 50257, 16)
		if err != nil {
			t.Fatal(err)
		}
		ds.Close()
	}
	// the tokenizer travels with the shards: a job reading them finds it
	j, err := job.Parse([]byte("data: {train: "+filepath.Join(out, "train_*.bin")+"}\neval: {every: 0}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := j.TokenizerDir(), filepath.Join(out, "tokenizer"); got != want {
		t.Fatalf("the job finds tokenizer %q, want %q", got, want)
	}
	if tok, err := tokenizer.Load(j.TokenizerDir()); err != nil || tok.VocabSize() != 50257 {
		t.Fatalf("saved tokenizer: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", inputs[0], "--out", out}, "--tokenizer is required"},
		{[]string{"--tokenizer", gpt2TestDir, "--out", out}, "--input"},
		{[]string{"--tokenizer", gpt2TestDir, inputs[0]}, "--out is required"},
		{[]string{"--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", t.TempDir(), "--val-fraction", "1"}, "--val-fraction 1"},
		{[]string{"--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", t.TempDir(), "--shard-tokens", "0"}, "--shard-tokens 0"},
		{[]string{"--tokenizer", gpt2TestDir, "--input", "/nonexistent.txt", "--out", t.TempDir()}, "/nonexistent.txt"},
		{[]string{"--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", t.TempDir(), "--special", "<pad>"}, `--special "<pad>", or pass --special ""`},
		{[]string{"--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", out}, "pass --overwrite"},
	} {
		if _, err := runPrepare(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := runPrepare("--tokenizer", gpt2TestDir, "--input", inputs[0], "--out", out, "--overwrite"); err != nil {
		t.Errorf("--overwrite: %v", err)
	}
}
