package trainer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/model"
)

var tiny = model.Config{VocabSize: 11, ContextLength: 8, DModel: 8, NumLayers: 1, NumHeads: 2, DFF: 12, RopeTheta: 10000}

// writeState writes a full checkpoint of step with parameters filled with
// the step number, optimizer state split over two files as two writers
// would, and commits it.
func writeState(t *testing.T, runDir string, step int64) string {
	t.Helper()
	dir := checkpoint.Dir(runDir, step)
	w := DirWriter(dir)
	n := tiny.NumParams()
	p, m, v := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range p {
		p[i], m[i], v[i] = float32(step), float32(i), float32(2*i)
	}
	lay := tiny.Layout()
	if err := w(ModelFile, func(out io.Writer) error { return model.WriteModel(out, tiny, p) }); err != nil {
		t.Fatal(err)
	}
	if err := WriteOptimizer(w, "optimizer-00000.safetensors", lay[:4], m, v); err != nil {
		t.Fatal(err)
	}
	if err := WriteOptimizer(w, "optimizer-00001.safetensors", lay[4:], m, v); err != nil {
		t.Fatal(err)
	}
	st := State{Meta: checkpoint.Meta{Step: step, Generation: 3}, DataPosition: 32 * step, Seed: 1337, WorldSize: 2, Model: tiny, Job: []byte(`{"name":"x"}`)}
	if err := WriteState(w, st); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Commit(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStateFiles(t *testing.T) {
	run := t.TempDir()
	dir := writeState(t, run, 7)
	st, err := ReadState(dir)
	if err != nil || st.Step != 7 || st.Generation != 3 || st.DataPosition != 224 || st.WorldSize != 2 || st.Model != tiny || !strings.Contains(string(st.Job), `"x"`) {
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
	if err := WriteOptimizer(DirWriter(dir), "moments.bin", tiny.Layout(), m, v); err == nil {
		t.Error("WriteOptimizer accepted a name outside optimizer*.safetensors")
	}
}

func TestModelPath(t *testing.T) {
	run := t.TempDir()
	dir := writeState(t, run, 3)
	file := filepath.Join(dir, ModelFile)
	spoilt := writeState(t, t.TempDir(), 4)
	os.Remove(filepath.Join(spoilt, StateFile))
	for _, tc := range []struct {
		arg, want, err string
	}{
		{run, file, ""},
		{dir, file, ""},
		{file, file, ""},
		{spoilt, "", "checksum"},
		{filepath.Join(dir, StateFile), "", "not a .safetensors file"},
		{t.TempDir(), "", "not a .safetensors file"},
		{filepath.Join(run, "nope"), "", "no such file"},
	} {
		got, err := ModelPath(tc.arg)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("ModelPath(%s) = %s, %v; want %s", tc.arg, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ModelPath(%s) error %v, want %q", tc.arg, err, tc.err)
		}
	}
}

// Several writers write their parts of one step directory at the same
// time; ReadOptimizer reassembles the moments.
func TestConcurrentOptimizerParts(t *testing.T) {
	dir := checkpoint.Dir(t.TempDir(), 1)
	lay := tiny.Layout()
	n := tiny.NumParams()
	m, v := make([]float32, n), make([]float32, n)
	for i := range m {
		m[i], v[i] = float32(i), -float32(i)
	}
	errs := make(chan error, len(lay))
	for i := range lay { // one optimizer file per tensor
		go func() {
			errs <- WriteOptimizer(DirWriter(dir), fmt.Sprintf("optimizer-%05d.safetensors", i), lay[i:i+1], m, v)
		}()
	}
	for range lay {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m2, v2 := make([]float32, n), make([]float32, n)
	if err := ReadOptimizer(dir, lay, m2, v2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m, m2) || !slices.Equal(v, v2) {
		t.Fatal("moments differ after a split write")
	}
}
