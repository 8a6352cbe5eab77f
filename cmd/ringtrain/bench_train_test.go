package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestBenchTrainOutput(t *testing.T) {
	defer func() { benchTrainFlags.precision = "fp32" }() // flags keep their values across Execute
	for _, prec := range []string{"fp32", "bf16"} {
		var out bytes.Buffer
		rootCmd.SetOut(&out)
		rootCmd.SetArgs([]string{"bench", "train", "--model", "small", "--steps", "1", "--warmup", "1", "--batch", "2", "--micro-batch", "1", "--seq", "8", "--threads", "2", "--precision", prec})
		if err := rootCmd.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !regexp.MustCompile(`^tokens_per_s=[0-9.]+ mfu=[0-9.]+$`).MatchString(lines[len(lines)-1]) {
			t.Fatalf("last line %q", lines[len(lines)-1])
		}
		for _, want := range []string{
			"precision " + prec,
			"flops/token = 6·N + 12·L·d·T",
			"peak = 2 threads × ",
			"per core, measured: ",
			"peak RSS ",
		} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%s: %q not stated:\n%s", prec, want, out.String())
			}
		}
	}
	for _, bad := range [][]string{{"--model", "huge"}, {"--model", "small", "--precision", "fp16"}} {
		rootCmd.SetArgs(append([]string{"bench", "train"}, bad...))
		if err := rootCmd.Execute(); err == nil || !strings.Contains(err.Error(), bad[len(bad)-1]) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
	rootCmd.SetArgs(nil)
}
