package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeModelFile(t *testing.T, path string, cfg Config, params []float32) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteModel(&buf, cfg, params); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	m, err := New(tinyConfig, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(7)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	writeModelFile(t, path, tinyConfig, m.Params)
	b, _ := os.ReadFile(path)
	hl := binary.LittleEndian.Uint64(b)
	if hl%8 != 0 || int(8+hl)+4*len(m.Params) != len(b) {
		t.Fatalf("header %d bytes, file %d bytes", hl, len(b))
	}
	cfg, p, err := ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != tinyConfig || !slices.Equal(p, m.Params) {
		t.Fatalf("round trip: config %+v, params equal %v", cfg, slices.Equal(p, m.Params))
	}
	q := make([]float32, len(p))
	if err := LoadInto(path, tinyConfig, q); err != nil || !slices.Equal(q, p) {
		t.Fatalf("LoadInto: %v", err)
	}
	other := tinyConfig
	other.RopeTheta = 500
	if err := LoadInto(path, other, q); err == nil {
		t.Fatal("LoadInto with a different config succeeded")
	}
}

// rewrite builds a safetensors file from the model's tensors after edit.
func rewrite(t *testing.T, dir string, edit func(ts []Tensor, md map[string]string) []Tensor) string {
	t.Helper()
	params := make([]float32, tinyConfig.NumParams())
	ts := LayoutTensors(tinyConfig.Layout(), params, "")
	md := tinyConfig.Metadata()
	ts = edit(ts, md)
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, ts, md); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.safetensors")
	os.WriteFile(path, buf.Bytes(), 0o644)
	return path
}

func TestSafetensorsRejects(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	writeModelFile(t, good, tinyConfig, make([]float32, tinyConfig.NumParams()))
	gb, _ := os.ReadFile(good)
	for _, tc := range []struct {
		name, want string
		path       func() string
	}{
		{"missing tensor", "tensor lm_head.weight missing", func() string {
			return rewrite(t, dir, func(ts []Tensor, _ map[string]string) []Tensor { return ts[:len(ts)-1] })
		}},
		{"extra tensor", "unexpected tensor layers.9.ln1.weight", func() string {
			return rewrite(t, dir, func(ts []Tensor, _ map[string]string) []Tensor {
				return append(ts, Tensor{Name: "layers.9.ln1.weight", Shape: []int{1}, Data: []float32{1}})
			})
		}},
		{"wrong shape", "tensor layers.0.attn.q_proj.weight has shape [4 16]", func() string {
			return rewrite(t, dir, func(ts []Tensor, _ map[string]string) []Tensor {
				ts[3].Shape = []int{4, 16}
				return ts
			})
		}},
		{"wrong metadata", "num_heads 3 must divide d_model 8", func() string {
			return rewrite(t, dir, func(ts []Tensor, md map[string]string) []Tensor {
				md["num_heads"] = "3"
				return ts
			})
		}},
		{"wrong dtype", "tensor ln_final.weight has dtype F16", func() string {
			s := strings.Replace(string(gb), `"ln_final.weight":{"dtype":"F32"`, `"ln_final.weight":{"dtype":"F16"`, 1)
			p := filepath.Join(dir, "dtype.safetensors")
			os.WriteFile(p, []byte(s), 0o644)
			return p
		}},
		{"truncated", "truncated", func() string {
			p := filepath.Join(dir, "trunc.safetensors")
			os.WriteFile(p, gb[:len(gb)-4], 0o644)
			return p
		}},
		{"header too long", "header length", func() string {
			p := filepath.Join(dir, "short.safetensors")
			os.WriteFile(p, gb[:100], 0o644)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadModel(tc.path())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
		})
	}
}

func TestSafetensorsSharded(t *testing.T) {
	dir := t.TempDir()
	params := make([]float32, tinyConfig.NumParams())
	for i := range params {
		params[i] = float32(i)
	}
	ts := LayoutTensors(tinyConfig.Layout(), params, "")
	wm := map[string]string{}
	for i, part := range [][]Tensor{ts[:5], ts[5:]} {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, part, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644)
		for _, x := range part {
			wm[x.Name] = name
		}
	}
	md := map[string]any{"total_size": 4 * len(params)}
	for k, v := range tinyConfig.Metadata() {
		md[k] = v
	}
	idx, _ := json.Marshal(map[string]any{"metadata": md, "weight_map": wm})
	path := filepath.Join(dir, "model.safetensors.index.json")
	os.WriteFile(path, idx, 0o644)
	cfg, p, err := ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != tinyConfig || !slices.Equal(p, params) {
		t.Fatal("sharded read differs")
	}
	wm["lm_head.weight"] = "model-00001-of-00002.safetensors"
	idx, _ = json.Marshal(map[string]any{"metadata": md, "weight_map": wm})
	os.WriteFile(path, idx, 0o644)
	if _, _, err := ReadModel(path); err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Fatalf("inconsistent weight_map: %v", err)
	}
}
