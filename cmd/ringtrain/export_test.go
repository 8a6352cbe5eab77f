package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ringtrain/ringtrain/hf"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

// run runs `ringtrain args...` with the flags of sub back at their
// defaults first (cobra keeps flag values between Execute calls).
func run(sub *cobra.Command, args ...string) (string, error) {
	sub.Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			sv.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	defer rootCmd.SetOut(nil)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	return out.String(), err
}

// TestExportEval: the torch reference model exported as a Hugging Face
// directory evaluates, read back through the inverse permutation, to the
// loss PyTorch computed for the original.
func TestExportEval(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hf")
	if _, err := run(exportCmd, "export", "--checkpoint", "../../model/testdata/torch_init.safetensors", "--format", "hf-llama", "--out", out); err != nil {
		t.Fatal(err)
	}
	if !hf.IsDir(out) {
		t.Fatalf("%s is not a Hugging Face directory", out)
	}
	got, err := run(evalCmd, "eval", "--checkpoint", out, "--data", "../../model/testdata/torch_tokens.bin")
	if err != nil {
		t.Fatal(err)
	}
	if want := "loss=4.101451 ppl=60.4279 tokens=48"; !strings.HasSuffix(strings.TrimSpace(got), want) {
		t.Errorf("eval of the exported directory: %q, want last line %q", got, want)
	}
	if _, err := run(exportCmd, "export", "--checkpoint", "../../model/testdata/torch_init.safetensors", "--format", "gguf", "--out", out); err == nil || !strings.Contains(err.Error(), "hf-llama") {
		t.Errorf("--format gguf: %v", err)
	}
}

// TestExportTokenizerGenerate: an export with a tokenizer carries the
// files AutoTokenizer reads, and generate on the directory needs no
// --tokenizer and gives the text of the original checkpoint.
func TestExportTokenizerGenerate(t *testing.T) {
	ckpt, tokDir, _, _, tok := genFixture(t, 300)
	out := filepath.Join(t.TempDir(), "hf")
	if _, err := run(exportCmd, "export", "--checkpoint", ckpt, "--tokenizer", tokDir, "--out", out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", hf.TokenizerConfigFile, hf.SpecialTokensMapFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("export lacks %s", f)
		}
	}
	var tc struct {
		Class      string `json:"tokenizer_class"`
		EOS        string `json:"eos_token"`
		MaxLength  int    `json:"model_max_length"`
		CleanUp    bool   `json:"clean_up_tokenization_spaces"`
		AddedToken map[string]struct {
			Content string
			Special bool
		} `json:"added_tokens_decoder"`
	}
	b, _ := os.ReadFile(filepath.Join(out, hf.TokenizerConfigFile))
	if err := json.Unmarshal(b, &tc); err != nil {
		t.Fatal(err)
	}
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	if tc.Class != "GPT2Tokenizer" || tc.EOS != tokenizer.EndOfText || tc.MaxLength != 16 || tc.CleanUp ||
		tc.AddedToken[strconv.Itoa(eot)].Content != tokenizer.EndOfText {
		t.Errorf("tokenizer_config.json: %s", b)
	}
	var cj struct {
		EOS *int `json:"eos_token_id"`
	}
	b, _ = os.ReadFile(filepath.Join(out, hf.ConfigFile))
	if json.Unmarshal(b, &cj); cj.EOS == nil || *cj.EOS != eot {
		t.Errorf("config.json eos_token_id: %s", b)
	}

	args := []string{"--prompt", "The quick", "--max-tokens", "20", "--temperature", "0"}
	want, err := runGen(append([]string{"--checkpoint", ckpt, "--tokenizer", tokDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runGen(append([]string{"--checkpoint", out}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || len(want) < 5 {
		t.Errorf("generate on the export: %q, on the checkpoint %q", got, want)
	}
}

// TestGenerateFindsTokenizer: without --tokenizer, generate takes the
// tokenizer kept in the checkpoint directory, or the one of the job in its
// state.json (tokenizer: key, or prepare's tokenizer/ beside data.train).
func TestGenerateFindsTokenizer(t *testing.T) {
	ckpt, tokDir, cfg, _, _ := genFixture(t, 300)
	args := []string{"--prompt", "The quick", "--max-tokens", "10", "--temperature", "0"}
	want, err := runGen(append([]string{"--checkpoint", ckpt, "--tokenizer", tokDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	ckptDir := filepath.Dir(ckpt)
	if _, err := runGen(append([]string{"--checkpoint", ckpt}, args...)...); err == nil || !strings.Contains(err.Error(), "--tokenizer not given") {
		t.Errorf("no tokenizer anywhere: %v", err)
	}
	data := t.TempDir()
	if err := tokenizer.Copy(filepath.Join(data, "tokenizer"), tokDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, jobText string }{ // "in checkpoint" last: its files stay
		{"tokenizer key", "tokenizer: " + tokDir + "\ndata: {train: x_*.bin}\neval: {every: 0}\n"},
		{"beside shards", "data: {train: " + data + "/train_*.bin}\neval: {every: 0}\n"},
		{"in checkpoint", ""},
	} {
		name, jobText := tc.name, tc.jobText
		os.RemoveAll(filepath.Join(ckptDir, trainer.StateFile))
		if jobText != "" {
			j, err := job.Parse([]byte(jobText), name)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(j)
			if err := trainer.WriteState(trainer.DirWriter(ckptDir), trainer.State{Model: cfg, Job: b}); err != nil {
				t.Fatal(err)
			}
		} else if err := trainer.WriteTokenizer(trainer.DirWriter(ckptDir), tokDir); err != nil {
			t.Fatal(err)
		}
		got, err := runGen(append([]string{"--checkpoint", ckpt}, args...)...)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestJobCheck: job check prints a resolved job that parses to the same
// job, and the split per world size.
func TestJobCheck(t *testing.T) {
	out, err := run(jobCheckCmd(), "job", "check", "../../examples/shakespeare.yaml", "--set", "train.lr=1e-3", "--set", "workers.max=2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lr: 0.001", "d_model: 256", "warmup: 20", "#       2                 8  1\n", "#       1                16  2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("job check output lacks %q:\n%s", want, out)
		}
	}
	p := filepath.Join(t.TempDir(), "resolved.yaml")
	os.WriteFile(p, []byte(out), 0o644)
	if _, err := run(jobCheckCmd(), "job", "check", p, "--workers", "2"); err != nil {
		t.Errorf("the resolved job does not check: %v", err)
	}
	if _, err := run(jobCheckCmd(), "job", "check", p, "--workers", "3"); err == nil || !strings.Contains(err.Error(), "--workers 3") {
		t.Errorf("--workers 3: %v", err)
	}
}

func jobCheckCmd() *cobra.Command {
	c, _, _ := rootCmd.Find([]string{"job", "check"})
	return c
}

// TestLoadJobSteps: --steps runs the job for N steps with the warmup
// scaled, and the job the coordinator runs (and checkpoints keep) carries
// both overrides.
func TestLoadJobSteps(t *testing.T) {
	j, err := loadJob("../../examples/shakespeare.yaml", []string{"train.lr=1e-3"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if j.Train.MaxSteps != 2 || j.Train.Warmup != 0 || j.Train.LR != 1e-3 {
		t.Errorf("train = %+v", j.Train)
	}
	if _, err := loadJob("../../examples/shakespeare.yaml", []string{"train.warmup=5"}, 2); err == nil ||
		!strings.HasPrefix(err.Error(), "--steps 2: job file ../../examples/shakespeare.yaml: train.warmup: 5 is longer than train.max_steps 2") {
		t.Errorf("explicit warmup longer than --steps: %v", err)
	}
}
