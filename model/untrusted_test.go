package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestUntrustedModelFile: a model file whose __metadata__ or header claims
// sizes that do not match its tensors is one error naming the key or the
// tensor, after allocating about the file's size, never the claimed size.
func TestUntrustedModelFile(t *testing.T) {
	dir := t.TempDir()
	meta := func(key, v string) func() string {
		return func() string {
			return rewrite(t, dir, func(ts []Tensor, md map[string]string) []Tensor { md[key] = v; return ts })
		}
	}
	header := func(h string) func() string { // a file with this JSON header and 64 data bytes
		return func() string {
			b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
			b = append(append(b, h...), make([]byte, 64)...)
			p := filepath.Join(dir, "h.safetensors")
			os.WriteFile(p, b, 0o644)
			return p
		}
	}
	for _, tc := range []struct {
		name, want string
		path       func() string
	}{
		{"vocab_size 99999999999", "vocab_size 99999999999 is larger than the supported maximum", meta("vocab_size", "99999999999")},
		{"vocab_size in range", "__metadata__.vocab_size 1000000: tensor token_embeddings.weight has 11 rows", meta("vocab_size", "1000000")},
		{"d_model huge", "d_model 4294967296 is larger", meta("d_model", "4294967296")},
		{"d_model in range", "__metadata__.d_model 65536", meta("d_model", "65536")},
		{"num_layers huge", "num_layers 1000000000000 is larger", meta("num_layers", "1000000000000")},
		{"num_layers in range", "__metadata__.num_layers 4000: tensor layers.3999.ln1.weight missing", meta("num_layers", "4000")},
		{"d_ff in range", "__metadata__.d_ff 200000", meta("d_ff", "200000")},
		{"context_length huge", "context_length 1099511627776 is larger", meta("context_length", "1099511627776")},
		{"rope_theta inf", "rope_theta must be positive", meta("rope_theta", "+Inf")},
		{"negative", "vocab_size must be positive", meta("vocab_size", "-5")},
		{"shape overflows int64", "shape [4294967296 4294967296 16] does not fit in 64 data bytes",
			header(`{"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`)},
		{"shape larger than file", "shape [1000000] does not fit", header(`{"x":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}`)},
		{"offsets beyond file", "data_offsets [0 400]", header(`{"x":{"dtype":"F32","shape":[10],"data_offsets":[0,400]}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path()
			var err error
			n := allocated(func() { _, _, err = ReadModel(path) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			if n > 16<<20 {
				t.Errorf("allocated %d bytes reading a %d-byte file", n, fileSize(t, path))
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// seedModelFile is a valid tiny model file, the fuzz targets' main seed.
func seedModelFile(f testing.TB) []byte {
	var buf bytes.Buffer
	params := make([]float32, tinyConfig.NumParams())
	for i := range params {
		params[i] = float32(i) / 100
	}
	if err := WriteModel(&buf, tinyConfig, params); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParseSafetensors: any bytes either parse into tensors whose data fit
// the file, or give an error; no panic, no allocation beyond the file's size.
func FuzzParseSafetensors(f *testing.F) {
	f.Add(seedModelFile(f))
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ParseSafetensors(data)
		if err != nil {
			return
		}
		total := 0
		for name, x := range ts {
			n := 1
			for _, s := range x.Shape {
				n *= s
			}
			if n != len(x.Data) {
				t.Fatalf("tensor %s: shape %v, %d values", name, x.Shape, len(x.Data))
			}
			total += 4 * n
		}
		if total > len(data) {
			t.Fatalf("%d tensor bytes from a %d-byte file", total, len(data))
		}
	})
}

// FuzzReadModel: a model file from anywhere reads into a valid config and
// exactly its parameters, or gives an error.
func FuzzReadModel(f *testing.F) {
	f.Add(seedModelFile(f))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "m.safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, params, err := ReadModel(p)
		if err != nil {
			return
		}
		if cfg.Validate() != nil || len(params) != cfg.NumParams() || 4*len(params) > len(data) {
			t.Fatalf("config %+v with %d parameters from %d bytes", cfg, len(params), len(data))
		}
	})
}

// FuzzReadShardedIndex: any model.safetensors.index.json beside two valid
// shards reads or gives an error; shard names never leave the directory.
func FuzzReadShardedIndex(f *testing.F) {
	dir := f.TempDir()
	params := make([]float32, tinyConfig.NumParams())
	ts := LayoutTensors(tinyConfig.Layout(), params, "")
	wm := map[string]string{}
	for i, part := range [][]Tensor{ts[:5], ts[5:]} {
		name := []string{"a.safetensors", "b.safetensors"}[i]
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, part, nil); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			f.Fatal(err)
		}
		for _, x := range part {
			wm[x.Name] = name
		}
	}
	md := map[string]any{}
	for k, v := range tinyConfig.Metadata() {
		md[k] = v
	}
	good, _ := json.Marshal(map[string]any{"metadata": md, "weight_map": wm})
	f.Add(good)
	f.Add([]byte(`{"weight_map":{"x":"../a.safetensors"}}`))
	f.Add([]byte(`{"metadata":{"vocab_size":"99999999999"},"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, index []byte) {
		p := filepath.Join(dir, "model.safetensors.index.json")
		if err := os.WriteFile(p, index, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, params, err := ReadModel(p)
		if err == nil && len(params) != cfg.NumParams() {
			t.Fatalf("config %+v with %d parameters", cfg, len(params))
		}
	})
}
