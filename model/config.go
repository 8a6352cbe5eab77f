package model

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Config fixes the shape of a decoder-only transformer (docs/model.md).
type Config struct {
	VocabSize     int     `json:"vocab_size" yaml:"vocab_size"`
	ContextLength int     `json:"context_length" yaml:"context_length"`
	DModel        int     `json:"d_model" yaml:"d_model"`
	NumLayers     int     `json:"num_layers" yaml:"num_layers"`
	NumHeads      int     `json:"num_heads" yaml:"num_heads"`
	DFF           int     `json:"d_ff" yaml:"d_ff"`
	RopeTheta     float64 `json:"rope_theta" yaml:"rope_theta"`
}

// presets are the named model shapes (docs/model.md).
var presets = map[string]Config{
	"cs336-17m": {VocabSize: 10000, ContextLength: 256, DModel: 512, NumLayers: 4, NumHeads: 16, DFF: 1344, RopeTheta: 10000},
	"small":     {VocabSize: 4096, ContextLength: 128, DModel: 256, NumLayers: 4, NumHeads: 8, DFF: 672, RopeTheta: 10000},
}

// Preset returns the named model shape ("cs336-17m" or "small").
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown model preset %q (known: %v)", name, PresetNames())
	}
	return c, nil
}

// PresetNames lists the known presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HeadDim is d_model / num_heads.
func (c Config) HeadDim() int { return c.DModel / c.NumHeads }

// Limits bounds each size of a Config, far above any model this code can
// train, so that every size derived from a valid Config (NumParams,
// activation sizes) fits an int64 and a config read from a stranger's file
// is refused before it can ask for an absurd allocation.
var Limits = struct{ VocabSize, ContextLength, DModel, NumLayers, DFF int }{
	VocabSize: 1 << 24, ContextLength: 1 << 24, DModel: 1 << 16, NumLayers: 1 << 12, DFF: 1 << 18,
}

// Validate reports the first impossible value, naming its key.
func (c Config) Validate() error {
	pos := []struct {
		key    string
		v, max int
	}{
		{"vocab_size", c.VocabSize, Limits.VocabSize}, {"context_length", c.ContextLength, Limits.ContextLength},
		{"d_model", c.DModel, Limits.DModel}, {"num_layers", c.NumLayers, Limits.NumLayers},
		{"num_heads", c.NumHeads, Limits.DModel}, {"d_ff", c.DFF, Limits.DFF},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("model: %s must be positive, got %d", p.key, p.v)
		}
		if p.v > p.max {
			return fmt.Errorf("model: %s %d is larger than the supported maximum %d", p.key, p.v, p.max)
		}
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("model: rope_theta must be positive, got %g", c.RopeTheta)
	}
	if c.DModel%c.NumHeads != 0 {
		return fmt.Errorf("model: num_heads %d must divide d_model %d", c.NumHeads, c.DModel)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("model: num_heads %d gives an odd head size d_model/num_heads = %d; RoPE needs it even", c.NumHeads, c.HeadDim())
	}
	return nil
}

// Metadata returns the config as decimal strings, the way it is stored in
// the safetensors __metadata__ (docs/checkpoints.md).
func (c Config) Metadata() map[string]string {
	return map[string]string{
		"vocab_size":     fmt.Sprint(c.VocabSize),
		"context_length": fmt.Sprint(c.ContextLength),
		"d_model":        fmt.Sprint(c.DModel),
		"num_layers":     fmt.Sprint(c.NumLayers),
		"num_heads":      fmt.Sprint(c.NumHeads),
		"d_ff":           fmt.Sprint(c.DFF),
		"rope_theta":     strconv.FormatFloat(c.RopeTheta, 'f', -1, 64),
	}
}

// ConfigFromMetadata parses the decimal strings written by Metadata.
func ConfigFromMetadata(md map[string]string) (Config, error) {
	var c Config
	ints := []struct {
		key string
		dst *int
	}{
		{"vocab_size", &c.VocabSize}, {"context_length", &c.ContextLength}, {"d_model", &c.DModel},
		{"num_layers", &c.NumLayers}, {"num_heads", &c.NumHeads}, {"d_ff", &c.DFF},
	}
	for _, f := range ints {
		s, ok := md[f.key]
		if !ok {
			return Config{}, fmt.Errorf("__metadata__.%s missing", f.key)
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return Config{}, fmt.Errorf("__metadata__.%s %q: not an integer", f.key, s)
		}
		*f.dst = v
	}
	s, ok := md["rope_theta"]
	if !ok {
		return Config{}, fmt.Errorf("__metadata__.rope_theta missing")
	}
	theta, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Config{}, fmt.Errorf("__metadata__.rope_theta %q: not a number", s)
	}
	c.RopeTheta = theta
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("__metadata__: %w", err)
	}
	return c, nil
}
