package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true},
		{"64MB", 64e6, true},
		{"64mib", 64 << 20, true},
		{"1048576", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1.5KiB", 1536, true},
		{"2GB", 2e9, true},
		{"100B", 100, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"64XB", 0, false},
		{"-1", 0, false},
		{"0.3B", 0, false},
	}
	for _, tc := range cases {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestBenchAllreduce(t *testing.T) {
	defer rootCmd.SetArgs(nil)
	defer func() { benchAllreduceFlags.wire = "fp32" }() // flags keep their values across Execute
	for _, wire := range []string{"fp32", "bf16"} {
		var out bytes.Buffer
		rootCmd.SetOut(&out)
		rootCmd.SetArgs([]string{"bench", "allreduce", "--workers", "3", "--bytes", "64KiB", "--chunk", "4KiB", "--iters", "2", "--warmup", "1", "--wire", wire})
		if err := rootCmd.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
		last := lines[len(lines)-1]
		if !regexp.MustCompile(`^algbw_GBps=[0-9.]+ busbw_GBps=[0-9.]+$`).Match(last) {
			t.Fatalf("last line %q", last)
		}
		if !bytes.Contains(out.Bytes(), []byte(wire+" wire")) {
			t.Fatalf("wire not stated:\n%s", out.Bytes())
		}
	}
	rootCmd.SetArgs([]string{"bench", "allreduce", "--wire", "int8"})
	if err := rootCmd.Execute(); err == nil || !strings.Contains(err.Error(), "int8") {
		t.Fatalf("--wire int8: %v", err)
	}
}
