package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/model"
)

var tiny = model.Config{VocabSize: 11, ContextLength: 8, DModel: 8, NumLayers: 1, NumHeads: 2, DFF: 12, RopeTheta: 10000}

// writeCheckpoint writes a full checkpoint of step with parameters filled
// with the step number, optimizer state split over two files as two
// workers would, and commits it unless commit is false.
func writeCheckpoint(t *testing.T, runDir string, step int64, commit bool) string {
	t.Helper()
	dir := Dir(runDir, step)
	n := tiny.NumParams()
	p, m, v := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range p {
		p[i], m[i], v[i] = float32(step), float32(i), float32(2*i)
	}
	lay := tiny.Layout()
	if err := WriteModel(dir, tiny, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteOptimizer(dir, "optimizer-00000.safetensors", lay[:4], m, v); err != nil {
		t.Fatal(err)
	}
	if err := WriteOptimizer(dir, "optimizer-00001.safetensors", lay[4:], m, v); err != nil {
		t.Fatal(err)
	}
	st := State{Step: step, DataPosition: 32 * step, Seed: 1337, WorldSize: 2, Model: tiny, Job: "name: x\nmodel: {preset: small}\n"}
	if err := WriteState(dir, st); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := Commit(dir); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWriteReadCommit(t *testing.T) {
	run := t.TempDir()
	dir := writeCheckpoint(t, run, 7, true)
	if filepath.Base(dir) != "step_00000007" {
		t.Fatalf("dir %s", dir)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"COMMIT", "model.safetensors", "optimizer-00000.safetensors", "optimizer-00001.safetensors", "state.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v (no temporaries left)", names, want)
	}
	commit, _ := os.ReadFile(filepath.Join(dir, CommitFile))
	if got := strings.Count(string(commit), "\n"); got != 4 {
		t.Fatalf("COMMIT has %d lines:\n%s", got, commit)
	}
	st, err := ReadState(dir)
	if err != nil || st.Step != 7 || st.DataPosition != 224 || st.WorldSize != 2 || st.Model != tiny || !strings.Contains(st.Job, "preset: small") {
		t.Fatalf("state %+v, %v", st, err)
	}
	n := tiny.NumParams()
	m, v := make([]float32, n), make([]float32, n)
	if err := ReadOptimizer(dir, tiny.Layout(), m, v); err != nil {
		t.Fatal(err)
	}
	for i := range m {
		if m[i] != float32(i) || v[i] != float32(2*i) {
			t.Fatalf("moment %d: %g %g", i, m[i], v[i])
		}
	}
	cfg, p, err := LoadModel(run)
	if err != nil || cfg != tiny || p[0] != 7 {
		t.Fatalf("LoadModel(run): %v %+v", err, cfg)
	}
}

func TestLatestSkipsBad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(dir string)
	}{
		{"no marker", func(dir string) { os.Remove(filepath.Join(dir, CommitFile)) }},
		{"truncated model", func(dir string) {
			p := filepath.Join(dir, ModelFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"flipped byte", func(dir string) {
			p := filepath.Join(dir, "optimizer-00001.safetensors")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		}},
		{"missing file", func(dir string) { os.Remove(filepath.Join(dir, StateFile)) }},
		{"bad marker", func(dir string) { os.WriteFile(filepath.Join(dir, CommitFile), []byte("xyz\n"), 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			writeCheckpoint(t, run, 100, true)
			bad := writeCheckpoint(t, run, 200, true)
			tc.spoil(bad)
			got, err := Latest(run)
			if err != nil || got != Dir(run, 100) {
				t.Fatalf("Latest = %s, %v; want step 100", got, err)
			}
			if err := Verify(bad); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrNotCommitted) {
				t.Fatalf("Verify(spoilt) = %v", err)
			}
			if _, err := Resolve(bad); err == nil {
				t.Fatal("Resolve accepted a spoilt checkpoint dir")
			}
		})
	}
	run := t.TempDir()
	if _, err := Latest(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty run: %v", err)
	}
	writeCheckpoint(t, run, 5, false)
	if _, err := Latest(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("only uncommitted: %v", err)
	}
}

func TestPrune(t *testing.T) {
	run := t.TempDir()
	for _, s := range []int64{10, 20, 30, 40, 50} {
		writeCheckpoint(t, run, s, s != 30 && s != 50) // 30: stale incomplete, 50: in progress
	}
	if err := Prune(run, 2); err != nil {
		t.Fatal(err)
	}
	steps, _ := Steps(run)
	if want := []int64{50, 40, 20}; !slices.Equal(steps, want) {
		t.Fatalf("after Prune(2): %v, want %v", steps, want)
	}
	if err := Prune(run, 0); err != nil {
		t.Fatal(err)
	}
	if steps, _ := Steps(run); len(steps) != 3 {
		t.Fatalf("Prune(0) deleted: %v", steps)
	}
}

func TestResolve(t *testing.T) {
	run := t.TempDir()
	dir := writeCheckpoint(t, run, 3, true)
	file := filepath.Join(dir, ModelFile)
	for _, tc := range []struct {
		arg, want, err string
	}{
		{run, file, ""},
		{dir, file, ""},
		{file, file, ""},
		{filepath.Join(dir, StateFile), "", "not a .safetensors file"},
		{t.TempDir(), "", "not a .safetensors file"},
		{filepath.Join(run, "nope"), "", "no such file"},
	} {
		got, err := Resolve(tc.arg)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("Resolve(%s) = %s, %v; want %s", tc.arg, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%s) error %v, want %q", tc.arg, err, tc.err)
		}
	}
}

// Several writers (goroutines here, processes in a cluster) write their
// parts of one step directory at the same time; Commit after all of them
// covers every part, and ReadOptimizer reassembles the moments.
func TestConcurrentParts(t *testing.T) {
	run := t.TempDir()
	dir := Dir(run, 1)
	lay := tiny.Layout()
	n := tiny.NumParams()
	m, v := make([]float32, n), make([]float32, n)
	for i := range m {
		m[i], v[i] = float32(i), -float32(i)
	}
	errs := make(chan error, len(lay)+1)
	for i := range lay { // one optimizer file per tensor
		go func() {
			errs <- WriteOptimizer(dir, fmt.Sprintf("optimizer-%05d.safetensors", i), lay[i:i+1], m, v)
		}()
	}
	go func() { errs <- WriteModel(dir, tiny, make([]float32, n)) }()
	for range len(lay) + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := Commit(dir); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	m2, v2 := make([]float32, n), make([]float32, n)
	if err := ReadOptimizer(dir, lay, m2, v2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m, m2) || !slices.Equal(v, v2) {
		t.Fatal("moments differ after a split write")
	}
	commit, _ := os.ReadFile(filepath.Join(dir, CommitFile))
	if got := strings.Count(string(commit), "\n"); got != len(lay)+1 {
		t.Fatalf("COMMIT lists %d files, want %d", got, len(lay)+1)
	}
}
