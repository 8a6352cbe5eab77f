package hf

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ringtrain/ringtrain/internal/readlimit"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
)

// File names of a Hugging Face model directory.
const (
	ConfigFile     = "config.json"
	ModelFile      = "model.safetensors"
	ModelIndexFile = "model.safetensors.index.json"
)

// ErrNotSupported is wrapped by every refusal of a configuration or tensor
// that the model cannot represent.
var ErrNotSupported = errors.New("not representable")

// IsDir reports whether dir looks like a Hugging Face model directory: a
// config.json beside model.safetensors or model.safetensors.index.json.
func IsDir(dir string) bool {
	if !exists(filepath.Join(dir, ConfigFile)) {
		return false
	}
	return exists(filepath.Join(dir, ModelFile)) || exists(filepath.Join(dir, ModelIndexFile))
}

func exists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Write writes the model as a Hugging Face LlamaForCausalLM directory:
// config.json and model.safetensors (float32, q and k rows permuted to
// Hugging Face's RoPE), and, when tok is not nil, the tokenizer files
// (WriteTokenizer). dir is created if needed; files in it are replaced.
func Write(dir string, cfg model.Config, params []float32, tok *tokenizer.Tokenizer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(params) != cfg.NumParams() {
		return fmt.Errorf("hf: %d parameters, config needs %d", len(params), cfg.NumParams())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	eos := -1
	if tok != nil {
		if tok.VocabSize() > cfg.VocabSize {
			return fmt.Errorf("hf: the tokenizer has %d tokens, more than the model's vocab_size %d", tok.VocabSize(), cfg.VocabSize)
		}
		if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
			eos = id
		}
	}
	if err := writeJSON(dir, ConfigFile, NewConfig(cfg, eos)); err != nil {
		return err
	}
	ts := toHF(cfg, params)
	if err := writeFile(dir, ModelFile, func(w io.Writer) error {
		return model.WriteSafetensors(w, ts, map[string]string{"format": "pt"})
	}); err != nil {
		return err
	}
	if tok != nil {
		return WriteTokenizer(dir, tok, cfg.ContextLength)
	}
	return nil
}

// writeFile writes dir/name through a temporary file renamed into place.
func writeFile(dir, name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// ReadConfig reads dir/config.json (at most MaxConfigBytes) with ParseConfig.
func ReadConfig(dir string) (model.Config, error) {
	b, err := readlimit.File(filepath.Join(dir, ConfigFile), MaxConfigBytes)
	if err != nil {
		return model.Config{}, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return model.Config{}, fmt.Errorf("%s: %w", dir, err)
	}
	return cfg, nil
}

// Read reads a Hugging Face Llama directory (config.json with
// model.safetensors or a sharded model.safetensors.index.json) into the
// model's config and parameters, undoing the RoPE permutation of q and k.
// Configurations and tensors the model cannot represent are refused,
// naming the field or tensor; every tensor's shape is checked before the
// parameters are allocated.
func Read(dir string) (model.Config, []float32, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return model.Config{}, nil, err
	}
	path := filepath.Join(dir, ModelIndexFile)
	if !exists(path) {
		path = filepath.Join(dir, ModelFile)
	}
	ts, _, err := model.ReadSafetensors(path)
	if err != nil {
		return model.Config{}, nil, err
	}
	layout := cfg.Layout()
	if err := checkTensors(layout, ts); err != nil { // before allocating for cfg
		return model.Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	params := make([]float32, cfg.NumParams())
	for _, p := range layout {
		dst, src := params[p.Offset:p.Offset+p.Size], ts[TensorName(p.Name)].Data
		if ropePermuted(p.Name) {
			PermuteFromHF(dst, src, cfg.NumHeads, cfg.HeadDim(), cfg.DModel)
		} else {
			copy(dst, src)
		}
	}
	return cfg, params, nil
}

// checkTensors reports the first tensor of layout that is missing from
// the Hugging Face tensors ts or has another shape, and refuses biases and
// tensors the model has no place for. Rotary inv_freq buffers, which older
// checkpoints carry, are derived from rope_theta and skipped.
func checkTensors(layout []model.ParamSpec, ts map[string]model.Tensor) error {
	want := make(map[string]bool, len(layout))
	for _, p := range layout {
		name := TensorName(p.Name)
		want[name] = true
		t, ok := ts[name]
		switch {
		case !ok && name == "lm_head.weight":
			return fmt.Errorf("%w: tensor lm_head.weight missing (tied embeddings cannot be represented)", ErrNotSupported)
		case !ok:
			return fmt.Errorf("%w: tensor %s missing", model.ErrFormat, name)
		case !slices.Equal(t.Shape, p.Shape):
			return fmt.Errorf("%w: tensor %s has shape %v, config.json says %v", model.ErrFormat, name, t.Shape, p.Shape)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		switch {
		case want[name] || strings.HasSuffix(name, ".rotary_emb.inv_freq"):
		case strings.HasSuffix(name, ".bias"):
			return fmt.Errorf("%w: tensor %s: biases cannot be represented", ErrNotSupported, name)
		default:
			return fmt.Errorf("%w: unexpected tensor %s", ErrNotSupported, name)
		}
	}
	return nil
}
