package model

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Tensor is one named float32 array of a safetensors file.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32 // row-major, len = product of Shape
}

// ErrFormat is wrapped by every error about a malformed or mismatching
// safetensors file.
var ErrFormat = errors.New("safetensors")

type stEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors, in the given order, as a safetensors
// file: an 8-byte little-endian header length, a JSON header (padded with
// spaces to a multiple of 8) with __metadata__, then the raw little-endian
// float32 data.
func WriteSafetensors(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		n := 1
		for _, s := range t.Shape {
			n *= s
		}
		if n != len(t.Data) {
			return fmt.Errorf("%w: tensor %s: shape %v has %d elements, data %d", ErrFormat, t.Name, t.Shape, n, len(t.Data))
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("%w: tensor %s written twice", ErrFormat, t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = stEntry{Dtype: "F32", Shape: shape, DataOffsets: [2]int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if pad := (8 - len(hj)%8) % 8; pad > 0 {
		hj = append(hj, strings.Repeat(" ", pad)...)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hj)))
	bw.Write(lenb[:])
	bw.Write(hj)
	var buf [4096]byte
	for _, t := range tensors {
		for d := t.Data; len(d) > 0; {
			k := min(len(d), len(buf)/4)
			for i, v := range d[:k] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := bw.Write(buf[:4*k]); err != nil {
				return err
			}
			d = d[k:]
		}
	}
	return bw.Flush()
}

// ParseSafetensors decodes a whole safetensors file held in b. Only F32
// tensors are accepted; the error names the offending tensor.
func ParseSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("%w: file of %d bytes is too short", ErrFormat, len(b))
	}
	hl := binary.LittleEndian.Uint64(b[:8])
	if hl > uint64(len(b)-8) || hl > 100<<20 {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds file size %d", ErrFormat, hl, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	data := b[8+hl:]
	var md map[string]string
	tensors := make(map[string]Tensor, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &md); err != nil {
				return nil, nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %s: %v", ErrFormat, name, err)
		}
		if e.Dtype != "F32" {
			return nil, nil, fmt.Errorf("%w: tensor %s has dtype %s, want F32", ErrFormat, name, e.Dtype)
		}
		n := int64(1)
		for _, s := range e.Shape {
			// n·s must not exceed what the data could hold (this also keeps it from overflowing).
			if s < 0 || (s > 0 && n > int64(len(data))/4/int64(s)) {
				return nil, nil, fmt.Errorf("%w: tensor %s: shape %v does not fit in %d data bytes", ErrFormat, name, e.Shape, len(data))
			}
			n *= int64(s)
		}
		s, end := e.DataOffsets[0], e.DataOffsets[1]
		if s < 0 || end < s || end > int64(len(data)) || end-s != 4*n {
			return nil, nil, fmt.Errorf("%w: tensor %s: data_offsets %v do not fit shape %v in %d data bytes (truncated file?)", ErrFormat, name, e.DataOffsets, e.Shape, len(data))
		}
		t := Tensor{Name: name, Shape: e.Shape, Data: make([]float32, n)}
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[s+4*int64(i):]))
		}
		tensors[name] = t
	}
	return tensors, md, nil
}

// ReadSafetensors reads a safetensors file, or a Hugging Face style sharded
// set when path ends in ".index.json" (its weight_map names the shard files
// beside it; the metadata of the index and of every shard are merged).
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	if strings.HasSuffix(path, ".index.json") {
		return readSharded(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	t, md, err := ParseSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, md, nil
}

func readSharded(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var idx struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", path, ErrFormat, err)
	}
	md := map[string]string{}
	for k, v := range idx.Metadata {
		if s, ok := v.(string); ok {
			md[k] = s
		}
	}
	files := slices.Sorted(maps.Keys(invert(idx.WeightMap)))
	all := map[string]Tensor{}
	for _, f := range files {
		if filepath.Base(f) != f {
			return nil, nil, fmt.Errorf("%s: %w: shard file %q must be a plain name", path, ErrFormat, f)
		}
		ts, smd, err := ReadSafetensors(filepath.Join(filepath.Dir(path), f))
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(md, smd)
		for name, t := range ts {
			if idx.WeightMap[name] != f {
				return nil, nil, fmt.Errorf("%s: %w: tensor %s is in %s but the weight_map says %q", path, ErrFormat, name, f, idx.WeightMap[name])
			}
			all[name] = t
		}
	}
	for name, f := range idx.WeightMap {
		if _, ok := all[name]; !ok {
			return nil, nil, fmt.Errorf("%s: %w: tensor %s missing from %s", path, ErrFormat, name, f)
		}
	}
	return all, md, nil
}

func invert(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// LayoutTensors returns the tensors of buf (laid out as layout) named with
// prefix+name; the data slices alias buf.
func LayoutTensors(layout []ParamSpec, buf []float32, prefix string) []Tensor {
	out := make([]Tensor, len(layout))
	for i, p := range layout {
		out[i] = Tensor{Name: prefix + p.Name, Shape: p.Shape, Data: buf[p.Offset : p.Offset+p.Size]}
	}
	return out
}

// FillLayout copies the tensors prefix+name of every layout entry into buf,
// checking first (CheckLayout) that each exists with the right shape and
// that no other tensor with that prefix is present. Errors name the tensor.
func FillLayout(layout []ParamSpec, buf []float32, tensors map[string]Tensor, prefix string) error {
	if err := CheckLayout(layout, tensors, prefix); err != nil {
		return err
	}
	for _, p := range layout {
		copy(buf[p.Offset:p.Offset+p.Size], tensors[prefix+p.Name].Data)
	}
	return nil
}

// CheckLayout reports the first layout entry whose tensor prefix+name is
// missing from tensors or has another shape, or a tensor with that prefix
// that the layout does not have. Since tensors were read from a file, a
// layout that passes is no larger than the file.
func CheckLayout(layout []ParamSpec, tensors map[string]Tensor, prefix string) error {
	want := make(map[string]bool, len(layout))
	for _, p := range layout {
		name := prefix + p.Name
		want[name] = true
		t, ok := tensors[name]
		if !ok {
			return fmt.Errorf("%w: tensor %s missing", ErrFormat, name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrFormat, name, t.Shape, p.Shape)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tensors)) {
		if strings.HasPrefix(name, prefix) && !want[name] {
			return fmt.Errorf("%w: unexpected tensor %s", ErrFormat, name)
		}
	}
	return nil
}

// WriteModel writes params (laid out for cfg) as a safetensors file with the
// names of docs/model.md and cfg in __metadata__ as decimal strings.
func WriteModel(w io.Writer, cfg Config, params []float32) error {
	if len(params) != cfg.NumParams() {
		return fmt.Errorf("model: %d parameters, config needs %d", len(params), cfg.NumParams())
	}
	md := cfg.Metadata()
	md["format"] = "pt"
	return WriteSafetensors(w, LayoutTensors(cfg.Layout(), params, ""), md)
}

// ReadModel reads a model file (.safetensors or a sharded
// model.safetensors.index.json) whose __metadata__ holds the config, and
// returns the config and the parameters in Layout order.
func ReadModel(path string) (Config, []float32, error) {
	ts, md, err := ReadSafetensors(path)
	if err != nil {
		return Config{}, nil, err
	}
	cfg, err := ConfigFromMetadata(md)
	if err == nil {
		err = checkMetadata(cfg, ts)
	}
	if err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w: %v", path, ErrFormat, err)
	}
	layout := cfg.Layout()
	if err := CheckLayout(layout, ts, ""); err != nil { // before allocating for cfg
		return Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	params := make([]float32, cfg.NumParams())
	if err := FillLayout(layout, params, ts, ""); err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, params, nil
}

// checkMetadata compares the sizes a file's __metadata__ claims with the
// tensors beside them, so that a size that disagrees with the file is an
// error naming the key (rather than a layout as large as the claim).
// context_length, num_heads and rope_theta shape no tensor; Validate
// bounds them.
func checkMetadata(cfg Config, ts map[string]Tensor) error {
	shape := func(name string) ([]int, error) {
		t, ok := ts[name]
		if !ok || len(t.Shape) == 0 {
			return nil, fmt.Errorf("tensor %s missing", name)
		}
		return t.Shape, nil
	}
	emb, err := shape("token_embeddings.weight")
	if err != nil {
		return err
	}
	if emb[0] != cfg.VocabSize {
		return fmt.Errorf("__metadata__.vocab_size %d: tensor token_embeddings.weight has %d rows", cfg.VocabSize, emb[0])
	}
	if len(emb) != 2 || emb[1] != cfg.DModel {
		return fmt.Errorf("__metadata__.d_model %d: tensor token_embeddings.weight has shape %v", cfg.DModel, emb)
	}
	last := fmt.Sprintf("layers.%d.ln1.weight", cfg.NumLayers-1)
	if _, err := shape(last); err != nil {
		return fmt.Errorf("__metadata__.num_layers %d: %w", cfg.NumLayers, err)
	}
	if next := fmt.Sprintf("layers.%d.ln1.weight", cfg.NumLayers); hasTensor(ts, next) {
		return fmt.Errorf("__metadata__.num_layers %d: the file has a tensor %s", cfg.NumLayers, next)
	}
	w1, err := shape("layers.0.ffn.w1.weight")
	if err != nil {
		return err
	}
	if w1[0] != cfg.DFF {
		return fmt.Errorf("__metadata__.d_ff %d: tensor layers.0.ffn.w1.weight has %d rows", cfg.DFF, w1[0])
	}
	return nil
}

// LoadInto reads the model file at path into params, laid out for cfg (for
// example a job's init file). If the file carries a config in its metadata,
// it must equal cfg.
func LoadInto(path string, cfg Config, params []float32) error {
	ts, md, err := ReadSafetensors(path)
	if err != nil {
		return err
	}
	if _, ok := md["d_model"]; ok {
		fc, err := ConfigFromMetadata(md)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", path, ErrFormat, err)
		}
		if fc != cfg {
			return fmt.Errorf("%s: %w: file config %+v differs from %+v", path, ErrFormat, fc, cfg)
		}
	}
	if len(params) != cfg.NumParams() {
		return fmt.Errorf("model: %d parameters, config needs %d", len(params), cfg.NumParams())
	}
	if err := FillLayout(cfg.Layout(), params, ts, ""); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func hasTensor(ts map[string]Tensor, name string) bool { _, ok := ts[name]; return ok }
