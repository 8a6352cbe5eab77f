package model

import (
	"strings"
	"testing"
)

func TestPresetsAndLayout(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lay := c.Layout()
		last := lay[len(lay)-1]
		if last.Offset+last.Size != c.NumParams() {
			t.Fatalf("%s: layout ends at %d, NumParams %d", name, last.Offset+last.Size, c.NumParams())
		}
		off := 0
		for _, p := range lay {
			if p.Offset != off || p.Decay != (len(p.Shape) == 2) {
				t.Fatalf("%s: %s at %d (want %d), decay %v", name, p.Name, p.Offset, off, p.Decay)
			}
			off += p.Size
		}
		back, err := ConfigFromMetadata(c.Metadata())
		if err != nil || back != c {
			t.Fatalf("%s: metadata round trip %+v, %v", name, back, err)
		}
	}
	c, _ := Preset("cs336-17m")
	if got := c.NumParams(); got != 22696448 {
		t.Errorf("cs336-17m has %d parameters", got)
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestValidate(t *testing.T) {
	good, _ := Preset("small")
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.NumHeads = 7 }, "num_heads 7 must divide d_model 256"},
		{func(c *Config) { c.NumHeads = 256 }, "odd head size"},
		{func(c *Config) { c.VocabSize = 0 }, "vocab_size must be positive"},
		{func(c *Config) { c.DFF = -1 }, "d_ff must be positive"},
		{func(c *Config) { c.RopeTheta = 0 }, "rope_theta must be positive"},
	} {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", c, err, tc.want)
		}
	}
}

func TestMetadataStrings(t *testing.T) {
	c := Config{VocabSize: 50304, ContextLength: 1024, DModel: 768, NumLayers: 12, NumHeads: 12, DFF: 2048, RopeTheta: 1e6}
	md := c.Metadata()
	if md["rope_theta"] != "1000000" || md["vocab_size"] != "50304" {
		t.Fatalf("metadata %v: want plain decimal strings", md)
	}
	md["d_model"] = "768x"
	if _, err := ConfigFromMetadata(md); err == nil || !strings.Contains(err.Error(), "d_model") {
		t.Fatalf("trailing garbage accepted: %v", err)
	}
}

func TestTrainFLOPsPerToken(t *testing.T) {
	c, _ := Preset("cs336-17m")
	params, attn := c.TrainFLOPsPerToken(256)
	// N = 4 layers × (4·512² + 3·512·1344 + 2·512) + 512 + 10000·512 (LM head)
	n := 4*(4*512*512+3*512*1344+2*512) + 512 + 10000*512
	if params != 6*float64(n) || attn != 12*4*512*256 {
		t.Fatalf("TrainFLOPsPerToken(256) = %v, %v; want %v, %v", params, attn, 6*float64(n), 12*4*512*256)
	}
}
