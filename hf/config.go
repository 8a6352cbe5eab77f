package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ringtrain/ringtrain/model"
)

// Config is the config.json that Write produces for LlamaForCausalLM.
type Config struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	HeadDim               int      `json:"head_dim"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	RopeScaling           any      `json:"rope_scaling"` // always null
	HiddenAct             string   `json:"hidden_act"`
	AttentionBias         bool     `json:"attention_bias"`
	MLPBias               bool     `json:"mlp_bias"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	TorchDtype            string   `json:"torch_dtype"`
	BOSTokenID            *int     `json:"bos_token_id,omitempty"`
	EOSTokenID            *int     `json:"eos_token_id,omitempty"`
}

// rmsNormEps is the RMSNorm epsilon of the model (docs/export.md).
const rmsNormEps = 1e-5

// NewConfig returns the config.json of cfg. eos ≥ 0 is the id of the
// tokenizer's <|endoftext|>, written as bos_token_id and eos_token_id.
func NewConfig(cfg model.Config, eos int) Config {
	c := Config{
		Architectures: []string{"LlamaForCausalLM"}, ModelType: "llama",
		VocabSize: cfg.VocabSize, HiddenSize: cfg.DModel, IntermediateSize: cfg.DFF,
		NumHiddenLayers: cfg.NumLayers, NumAttentionHeads: cfg.NumHeads, NumKeyValueHeads: cfg.NumHeads,
		HeadDim: cfg.HeadDim(), MaxPositionEmbeddings: cfg.ContextLength,
		RMSNormEps: rmsNormEps, RopeTheta: cfg.RopeTheta, HiddenAct: "silu", TorchDtype: "float32",
	}
	if eos >= 0 {
		c.BOSTokenID, c.EOSTokenID = &eos, &eos
	}
	return c
}

// MaxConfigBytes bounds the size of a config.json that is read.
const MaxConfigBytes = 1 << 20

// ParseConfig reads a Hugging Face config.json into the model's shape. It
// refuses, naming the field, every setting the model cannot represent:
// another architecture, grouped KV heads (num_key_value_heads ≠
// num_attention_heads), a head_dim other than hidden_size /
// num_attention_heads, tied embeddings, rope_scaling or a non-default
// rope_parameters.rope_type, attention or MLP biases, an activation other
// than silu, and an RMSNorm epsilon other than 1e-5 (Hugging Face's default
// when the field is missing is 1e-6). Fields that do not change the
// arithmetic (torch_dtype, token ids, dropout, …) are ignored.
func ParseConfig(b []byte) (model.Config, error) {
	if len(b) > MaxConfigBytes {
		return model.Config{}, fmt.Errorf("config.json of %d bytes is larger than %d", len(b), MaxConfigBytes)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return model.Config{}, fmt.Errorf("config.json: %w", err)
	}
	p := configParser{raw: raw}
	return p.parse()
}

type configParser struct {
	raw map[string]json.RawMessage
	err error // the first error
}

func (p *configParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("config.json: "+format, args...)
	}
}

// present reports whether key is given and not null.
func (p *configParser) present(key string) bool {
	v, ok := p.raw[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// int reads key as an integer in 1..max; def < 0 makes it required.
func (p *configParser) int(key string, def, max int) int {
	if !p.present(key) {
		if def < 0 {
			p.fail("%s missing", key)
		}
		return def
	}
	var v int64
	if err := json.Unmarshal(p.raw[key], &v); err != nil {
		p.fail("%s %s: not an integer", key, short(p.raw[key]))
		return 0
	}
	if v < 1 || v > int64(max) {
		p.fail("%s %d: out of range 1..%d", key, v, max)
		return 0
	}
	return int(v)
}

func (p *configParser) float(key string, def float64) float64 {
	if !p.present(key) {
		return def
	}
	var v float64
	if err := json.Unmarshal(p.raw[key], &v); err != nil {
		p.fail("%s %s: not a number", key, short(p.raw[key]))
		return def
	}
	return v
}

func (p *configParser) str(key, def string) string {
	if !p.present(key) {
		return def
	}
	var v string
	if err := json.Unmarshal(p.raw[key], &v); err != nil {
		p.fail("%s %s: not a string", key, short(p.raw[key]))
	}
	return v
}

func (p *configParser) bool(key string) bool {
	if !p.present(key) {
		return false
	}
	var v bool
	if err := json.Unmarshal(p.raw[key], &v); err != nil {
		p.fail("%s %s: not true or false", key, short(p.raw[key]))
	}
	return v
}

func (p *configParser) parse() (model.Config, error) {
	var arch []string
	if p.present("architectures") {
		if err := json.Unmarshal(p.raw["architectures"], &arch); err != nil {
			p.fail("architectures %s: not a list of strings", short(p.raw["architectures"]))
		}
	}
	mt := p.str("model_type", "")
	switch {
	case mt == "" && arch == nil:
		p.fail("neither model_type nor architectures is given (want llama / LlamaForCausalLM)")
	case mt != "" && mt != "llama":
		p.fail("model_type %q: only llama can be read", mt)
	case arch != nil && !slices.Equal(arch, []string{"LlamaForCausalLM"}):
		p.fail("architectures %q: only [LlamaForCausalLM] can be read", arch)
	}
	lim := model.Limits
	c := model.Config{
		VocabSize:     p.int("vocab_size", -1, lim.VocabSize),
		DModel:        p.int("hidden_size", -1, lim.DModel),
		DFF:           p.int("intermediate_size", -1, lim.DFF),
		NumLayers:     p.int("num_hidden_layers", -1, lim.NumLayers),
		NumHeads:      p.int("num_attention_heads", -1, lim.DModel),
		ContextLength: p.int("max_position_embeddings", -1, lim.ContextLength),
		RopeTheta:     p.float("rope_theta", 10000),
	}
	if p.err != nil {
		return model.Config{}, p.err
	}
	if c.DModel%c.NumHeads != 0 {
		p.fail("num_attention_heads %d does not divide hidden_size %d", c.NumHeads, c.DModel)
	} else if hd := p.int("head_dim", c.DModel/c.NumHeads, lim.DModel); hd != c.DModel/c.NumHeads {
		p.fail("head_dim %d differs from hidden_size / num_attention_heads = %d", hd, c.DModel/c.NumHeads)
	}
	if kv := p.int("num_key_value_heads", c.NumHeads, lim.DModel); kv != c.NumHeads {
		p.fail("num_key_value_heads %d differs from num_attention_heads %d: grouped-query attention cannot be represented", kv, c.NumHeads)
	}
	if p.bool("tie_word_embeddings") {
		p.fail("tie_word_embeddings true: tied embeddings cannot be represented (lm_head is its own matrix)")
	}
	if p.present("rope_scaling") {
		p.fail("rope_scaling %s: RoPE scaling cannot be represented", short(p.raw["rope_scaling"]))
	}
	if p.present("rope_parameters") {
		c.RopeTheta = p.ropeParameters(c.RopeTheta)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		p.fail("rope_theta %v: must be a positive number", c.RopeTheta)
	}
	for _, key := range []string{"attention_bias", "mlp_bias"} {
		if p.bool(key) {
			p.fail("%s true: biases cannot be represented", key)
		}
	}
	if act := p.str("hidden_act", "silu"); act != "silu" {
		p.fail("hidden_act %q: only silu can be represented", act)
	}
	if !p.present("rms_norm_eps") {
		p.fail("rms_norm_eps missing: Hugging Face's default 1e-6 differs from the model's fixed 1e-5")
	} else if eps := p.float("rms_norm_eps", 0); eps != rmsNormEps && p.err == nil {
		p.fail("rms_norm_eps %v: the model's RMSNorm epsilon is fixed at 1e-5", eps)
	}
	if p.err != nil {
		return model.Config{}, p.err
	}
	if err := c.Validate(); err != nil {
		return model.Config{}, fmt.Errorf("config.json: %w", err)
	}
	return c, nil
}

// ropeParameters reads the rope_parameters object of newer transformers
// versions: only rope_type "default" (with its rope_theta) is the model's RoPE.
func (p *configParser) ropeParameters(theta float64) float64 {
	var rp map[string]json.RawMessage
	if err := json.Unmarshal(p.raw["rope_parameters"], &rp); err != nil {
		p.fail("rope_parameters %s: not an object", short(p.raw["rope_parameters"]))
		return theta
	}
	sub := configParser{raw: rp}
	if rt := sub.str("rope_type", "default"); rt != "default" {
		p.fail("rope_parameters.rope_type %q: only default RoPE can be represented", rt)
	}
	t := sub.float("rope_theta", theta)
	for _, k := range slices.Sorted(maps.Keys(rp)) {
		if k != "rope_type" && k != "rope_theta" {
			p.fail("rope_parameters.%s: RoPE scaling cannot be represented", k)
		}
	}
	if sub.err != nil {
		p.fail("rope_parameters: %v", strings.TrimPrefix(sub.err.Error(), "config.json: "))
	}
	return t
}

// short quotes a JSON value for an error message, cut to 40 bytes.
func short(v json.RawMessage) string {
	s := string(bytes.TrimSpace(v))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
