package hf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/model"
)

func refConfig(t testing.TB) map[string]any {
	b, err := os.ReadFile("testdata/tiny-llama/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConfigRefusals: every setting the model cannot represent, and every
// malformed or absurd value, is one error naming the field.
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		key  string
		val  any // nil deletes the key
		want string
	}{
		{"num_key_value_heads", 2, "num_key_value_heads 2 differs from num_attention_heads 4: grouped-query attention"},
		{"tie_word_embeddings", true, "tie_word_embeddings true: tied embeddings"},
		{"rope_scaling", map[string]any{"rope_type": "llama3", "factor": 8}, "rope_scaling {"},
		{"rope_parameters", map[string]any{"rope_type": "yarn", "rope_theta": 10000}, `rope_parameters.rope_type "yarn"`},
		{"rope_parameters", map[string]any{"rope_theta": 10000, "factor": 2}, "rope_parameters.factor"},
		{"attention_bias", true, "attention_bias true: biases"},
		{"mlp_bias", true, "mlp_bias true: biases"},
		{"hidden_act", "gelu", `hidden_act "gelu"`},
		{"rms_norm_eps", 1e-6, "rms_norm_eps 1e-06"},
		{"rms_norm_eps", nil, "rms_norm_eps missing"},
		{"head_dim", 16, "head_dim 16 differs"},
		{"model_type", "mistral", `model_type "mistral"`},
		{"architectures", []string{"LlamaForSequenceClassification"}, "architectures"},
		{"vocab_size", 99999999999, "vocab_size 99999999999: out of range"},
		{"hidden_size", 1 << 30, "hidden_size 1073741824: out of range"},
		{"num_hidden_layers", 1e12, "num_hidden_layers 1000000000000: out of range 1..4096"},
		{"num_hidden_layers", 2.5, "num_hidden_layers 2.5: not an integer"},
		{"num_hidden_layers", "4", `num_hidden_layers "4": not an integer`},
		{"intermediate_size", -1, "intermediate_size -1: out of range"},
		{"max_position_embeddings", nil, "max_position_embeddings missing"},
		{"num_attention_heads", 5, "num_attention_heads 5 does not divide hidden_size 32"},
		{"rope_theta", -1, "rope_theta -1"},
	} {
		m := refConfig(t)
		if tc.val == nil {
			delete(m, tc.key)
		} else {
			m[tc.key] = tc.val
		}
		b, _ := json.Marshal(m)
		_, err := ParseConfig(b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %v: error %v, want one containing %q", tc.key, tc.val, err, tc.want)
		}
	}
	if _, err := ParseConfig(make([]byte, MaxConfigBytes+1)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized config.json: %v", err)
	}
	// Fields that do not change the arithmetic are accepted.
	m := refConfig(t)
	m["torch_dtype"], m["pretraining_tp"], m["bos_token_id"], m["attention_dropout"] = "bfloat16", 1, 1, 0.0
	m["rope_parameters"] = map[string]any{"rope_type": "default", "rope_theta": 50000.0}
	b, _ := json.Marshal(m)
	if _, err := ParseConfig(b); err != nil {
		t.Errorf("harmless fields refused: %v", err)
	}
}

// copyRef copies testdata/tiny-llama to a temporary directory, with its
// tensors changed by edit.
func copyRef(t *testing.T, edit func(ts []model.Tensor) []model.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	cj, _ := os.ReadFile("testdata/tiny-llama/config.json")
	os.WriteFile(filepath.Join(dir, ConfigFile), cj, 0o644)
	m, _, err := model.ReadSafetensors("testdata/tiny-llama/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var ts []model.Tensor
	for _, x := range m {
		ts = append(ts, x)
	}
	ts = edit(ts)
	f, _ := os.Create(filepath.Join(dir, ModelFile))
	defer f.Close()
	if err := model.WriteSafetensors(f, ts, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadRefusals(t *testing.T) {
	without := func(name string) func([]model.Tensor) []model.Tensor {
		return func(ts []model.Tensor) []model.Tensor {
			for i, x := range ts {
				if x.Name == name {
					return append(ts[:i], ts[i+1:]...)
				}
			}
			return ts
		}
	}
	with := func(x model.Tensor) func([]model.Tensor) []model.Tensor {
		return func(ts []model.Tensor) []model.Tensor { return append(ts, x) }
	}
	for _, tc := range []struct {
		name, want string
		edit       func([]model.Tensor) []model.Tensor
	}{
		{"bias", "tensor model.layers.0.self_attn.q_proj.bias: biases", with(model.Tensor{Name: "model.layers.0.self_attn.q_proj.bias", Shape: []int{32}, Data: make([]float32, 32)})},
		{"tied", "tensor lm_head.weight missing (tied embeddings", without("lm_head.weight")},
		{"missing", "tensor model.layers.1.mlp.up_proj.weight missing", without("model.layers.1.mlp.up_proj.weight")},
		{"extra", "unexpected tensor model.layers.2.input_layernorm.weight", with(model.Tensor{Name: "model.layers.2.input_layernorm.weight", Shape: []int{32}, Data: make([]float32, 32)})},
		{"shape", "tensor model.norm.weight has shape [31], config.json says [32]", func(ts []model.Tensor) []model.Tensor {
			ts = without("model.norm.weight")(ts)
			return append(ts, model.Tensor{Name: "model.norm.weight", Shape: []int{31}, Data: make([]float32, 31)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Read(copyRef(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// inv_freq buffers of older checkpoints are skipped.
	dir := copyRef(t, with(model.Tensor{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", Shape: []int{4}, Data: make([]float32, 4)}))
	if _, _, err := Read(dir); err != nil {
		t.Errorf("inv_freq: %v", err)
	}
}

// TestReadHugeConfig: a config.json claiming a huge model beside a small
// file is refused after allocating about the file's size.
func TestReadHugeConfig(t *testing.T) {
	dir := copyRef(t, func(ts []model.Tensor) []model.Tensor { return ts })
	m := refConfig(t)
	m["vocab_size"], m["hidden_size"], m["num_attention_heads"], m["num_key_value_heads"] = 1<<24, 1<<16, 1<<10, 1<<10
	m["intermediate_size"], m["num_hidden_layers"] = 1<<18, 1<<12
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, _, err := Read(dir)
	runtime.ReadMemStats(&ms1)
	if err == nil || !errors.Is(err, model.ErrFormat) || !strings.Contains(err.Error(), "model.embed_tokens.weight has shape [64 32], config.json says [16777216 65536]") {
		t.Fatalf("error %v", err)
	}
	if n := ms1.TotalAlloc - ms0.TotalAlloc; n > 64<<20 {
		t.Fatalf("allocated %d bytes", n)
	}
}

// FuzzParseConfig: any config.json parses into a valid model config or
// gives an error.
func FuzzParseConfig(f *testing.F) {
	good, _ := os.ReadFile("testdata/tiny-llama/config.json")
	f.Add(good)
	f.Add([]byte(`{"model_type":"llama","rope_parameters":{"rope_type":"default"}}`))
	f.Add([]byte(`{"vocab_size":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err == nil && cfg.Validate() != nil {
			t.Fatalf("invalid config %+v accepted", cfg)
		}
	})
}
