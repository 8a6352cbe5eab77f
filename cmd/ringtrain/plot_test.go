package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPlot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newPlotCmd()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestPlotCommand(t *testing.T) {
	run := t.TempDir()
	fixture, err := os.ReadFile("../../runmetrics/testdata/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "metrics.jsonl"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "loss.png")
	msg, err := runPlot(t, "--run", run, "--out", out, "--width", "800", "--height", "600")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "120 steps, 4 evals, 3 generation changes") {
		t.Errorf("printed %q", msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 800 || cfg.Height != 600 {
		t.Fatalf("%s: %dx%d, %v", out, cfg.Width, cfg.Height, err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "metrics.jsonl"), append(fixture[:200:200], []byte("\n}{\n")...), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--run", run}, "--run and --out: required"},
		{[]string{"--run", run, "--out", "x.gif"}, "--out x.gif: want a .png or .svg"},
		{[]string{"--run", t.TempDir(), "--out", out}, "metrics.jsonl: no such file"},
		{[]string{"--run", bad, "--out", out}, filepath.Join(bad, "metrics.jsonl") + ":2: not a JSON metrics line"},
	} {
		if _, err := runPlot(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plot %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
