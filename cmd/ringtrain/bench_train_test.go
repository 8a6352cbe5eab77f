package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestBenchTrainOutput(t *testing.T) {
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetArgs([]string{"bench", "train", "--model", "small", "--steps", "1", "--warmup", "0", "--batch", "1", "--seq", "8", "--threads", "2", "--flops-per-cycle", "0"})
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !regexp.MustCompile(`^tokens_per_s=[0-9.]+ mfu=[0-9.]+$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	peak := fmt.Sprintf("peak = 2 cores × 3.0 GHz × %d FLOP/cycle = %.1f GFLOP/s", hostFlopsPerCycle(), 6*float64(hostFlopsPerCycle()))
	if !strings.Contains(out.String(), peak) {
		t.Fatalf("peak not stated:\n%s", out.String())
	}
	rootCmd.SetArgs([]string{"bench", "train", "--model", "huge"})
	if err := rootCmd.Execute(); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("unknown model: %v", err)
	}
}
