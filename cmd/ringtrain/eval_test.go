package main

import (
	"bytes"
	"strings"
	"testing"
)

// The torch reference files of the model package: a 7568-parameter model
// and a shard of 3 sequences of 16 tokens whose mean loss PyTorch computed
// as 4.1014509 (model/testdata/torch_reference.json).
func TestEvalMatchesTorch(t *testing.T) {
	for _, batch := range []string{"1", "2", "8"} {
		var out bytes.Buffer
		rootCmd.SetOut(&out)
		rootCmd.SetArgs([]string{"eval", "--checkpoint", "../../model/testdata/torch_init.safetensors",
			"--data", "../../model/testdata/torch_tokens.bin", "--batch", batch})
		if err := rootCmd.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if got, want := lines[len(lines)-1], "loss=4.101451 ppl=60.4279 tokens=48"; got != want {
			t.Errorf("--batch %s: last line %q, want %q", batch, got, want)
		}
	}
	rootCmd.SetArgs([]string{"eval", "--checkpoint", "../../model/testdata/torch_tokens.bin", "--data", "x"})
	if err := rootCmd.Execute(); err == nil || !strings.Contains(err.Error(), "torch_tokens.bin") {
		t.Errorf("bad checkpoint: %v", err)
	}
}
