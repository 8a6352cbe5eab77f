package trainer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/hf"
	"github.com/ringtrain/ringtrain/model"
)

// TestHuggingFaceDir: ModelPath, LoadModel and LoadInto (a job's init:)
// read a Hugging Face directory; a committed checkpoint that also holds a
// config.json stays a checkpoint.
func TestHuggingFaceDir(t *testing.T) {
	params := make([]float32, tiny.NumParams())
	for i := range params {
		params[i] = float32(i%97) / 10
	}
	dir := t.TempDir()
	if err := hf.Write(dir, tiny, params, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ModelPath(dir); err != nil || got != dir {
		t.Fatalf("ModelPath(%s) = %s, %v", dir, got, err)
	}
	cfg, p, err := LoadModel(dir)
	if err != nil || cfg != tiny || !slices.Equal(p, params) {
		t.Fatalf("LoadModel: %+v, equal %v, %v", cfg, slices.Equal(p, params), err)
	}
	into := make([]float32, len(params))
	if err := LoadInto(dir, tiny, into); err != nil || !slices.Equal(into, params) {
		t.Fatalf("LoadInto: %v", err)
	}
	other := tiny
	other.DFF = 16
	if err := LoadInto(dir, other, make([]float32, other.NumParams())); err == nil || !errors.Is(err, model.ErrFormat) || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("LoadInto with another config: %v", err)
	}

	ck := writeState(t, t.TempDir(), 3)
	if err := os.WriteFile(filepath.Join(ck, hf.ConfigFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ModelPath(ck); err != nil || got != filepath.Join(ck, ModelFile) {
		t.Fatalf("ModelPath(checkpoint) = %s, %v", got, err)
	}
}
