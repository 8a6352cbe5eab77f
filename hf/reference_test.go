package hf

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/model"
)

// hfRef is testdata/hf_reference.json, written by
// scripts/hf_llama_reference.py (PyTorch 1.13, float32) with
// testdata/cs336.safetensors and testdata/tiny-llama/.
type hfRef struct {
	Config     model.Config
	Batch, Seq int
	Tokens     []int32
	LogitsHF   []float64 `json:"logits_hf"`
	LogitsOurs []float64 `json:"logits_ours"`
}

func loadRef(t *testing.T) hfRef {
	t.Helper()
	b, err := os.ReadFile("testdata/hf_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r hfRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// logits runs the model's forward pass on the reference tokens.
func logits(t *testing.T, cfg model.Config, params []float32, r hfRef) []float32 {
	t.Helper()
	m, err := model.New(cfg, r.Batch, r.Seq)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Params, params)
	m.Forward(r.Tokens, nil, r.Batch, r.Seq)
	return m.Logits()
}

func maxAbsDiff(a []float32, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

// TestImportMatchesHFForward: the directory written by the independent
// script, read by Read, gives through the model's forward pass the logits
// of the script's Hugging Face Llama forward pass, to float rounding.
func TestImportMatchesHFForward(t *testing.T) {
	r := loadRef(t)
	cfg, params, err := Read("testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != r.Config {
		t.Fatalf("config %+v, want %+v", cfg, r.Config)
	}
	got := logits(t, cfg, params, r)
	// float32 rounding: the script's two forward passes differ by 1.4e-5
	// (logits up to 7); the limit leaves room for summation order.
	const tol = 5e-5
	dHF, dOurs := maxAbsDiff(got, r.LogitsHF), maxAbsDiff(got, r.LogitsOurs)
	t.Logf("max |logit diff| vs HF Llama forward %.3g, vs interleaved forward %.3g (%d logits)", dHF, dOurs, len(got))
	if dHF > tol || dOurs > tol {
		t.Fatalf("max |logit diff| %.3g (HF) %.3g (interleaved), want ≤ %g", dHF, dOurs, tol)
	}
}

// TestUnpermutedDoesNotMatch: reading q and k without undoing the
// permutation gives other logits, so the test above does check it.
func TestUnpermutedDoesNotMatch(t *testing.T) {
	r := loadRef(t)
	cfg, err := ReadConfig("testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	ts, _, err := model.ReadSafetensors("testdata/tiny-llama/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	params := make([]float32, cfg.NumParams())
	for _, p := range cfg.Layout() {
		copy(params[p.Offset:], ts[TensorName(p.Name)].Data) // no PermuteFromHF
	}
	d := maxAbsDiff(logits(t, cfg, params, r), r.LogitsHF)
	t.Logf("without the inverse permutation: max |logit diff| %.3g", d)
	if d < 0.1 {
		t.Fatalf("unpermuted q/k give logits within %.3g of the reference: the permutation is not exercised", d)
	}
}

// TestExportMatchesScript: Write of the script's section-2 weights gives
// bitwise the tensors the script converted on its own, and the same config.
func TestExportMatchesScript(t *testing.T) {
	cfg, params, err := model.ReadModel("testdata/cs336.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, cfg, params, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := model.ReadSafetensors(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := model.ReadSafetensors("testdata/tiny-llama/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, the script wrote %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || !slices.Equal(g.Shape, w.Shape) || !bitwiseEqual(g.Data, w.Data) {
			t.Errorf("tensor %s differs from the script's (present %v)", name, ok)
		}
	}
	back, err := ReadConfig(dir)
	if err != nil || back != cfg {
		t.Fatalf("exported config.json reads as %+v (%v), want %+v", back, err, cfg)
	}
}

func bitwiseEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestRoundTrip: export then import gives back the config and every
// parameter bit for bit.
func TestRoundTrip(t *testing.T) {
	for _, cfg := range []model.Config{
		{VocabSize: 50, ContextLength: 16, DModel: 24, NumLayers: 3, NumHeads: 3, DFF: 40, RopeTheta: 10000},
		{VocabSize: 300, ContextLength: 64, DModel: 64, NumLayers: 1, NumHeads: 2, DFF: 172, RopeTheta: 123456.5},
	} {
		m, err := model.New(cfg, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(3)
		dir := t.TempDir()
		if err := Write(dir, cfg, m.Params, nil); err != nil {
			t.Fatal(err)
		}
		back, params, err := Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if back != cfg || !bitwiseEqual(params, m.Params) {
			t.Fatalf("%+v: round trip gives config %+v, parameters equal %v", cfg, back, bitwiseEqual(params, m.Params))
		}
	}
}

func TestPermuteInverse(t *testing.T) {
	const heads, hd, cols = 3, 6, 2
	src := make([]float32, heads*hd*cols)
	for i := range src {
		src[i] = float32(i)
	}
	hf, back := make([]float32, len(src)), make([]float32, len(src))
	PermuteToHF(hf, src, heads, hd, cols)
	PermuteFromHF(back, hf, heads, hd, cols)
	if !slices.Equal(back, src) {
		t.Fatal("PermuteFromHF does not undo PermuteToHF")
	}
	// Head 0, rows 0..5 = pairs (0,1) (2,3) (4,5): HF takes the first of each pair, then the second.
	var rows []float32
	for r := range hd {
		rows = append(rows, hf[r*cols]/cols)
	}
	if want := []float32{0, 2, 4, 1, 3, 5}; !slices.Equal(rows, want) {
		t.Fatalf("head 0 rows %v, want %v", rows, want)
	}
}

func TestTensorNames(t *testing.T) {
	for ours, want := range map[string]string{
		"token_embeddings.weight":          "model.embed_tokens.weight",
		"layers.0.ln1.weight":              "model.layers.0.input_layernorm.weight",
		"layers.11.ln2.weight":             "model.layers.11.post_attention_layernorm.weight",
		"layers.2.attn.q_proj.weight":      "model.layers.2.self_attn.q_proj.weight",
		"layers.2.attn.v_proj.weight":      "model.layers.2.self_attn.v_proj.weight",
		"layers.2.attn.output_proj.weight": "model.layers.2.self_attn.o_proj.weight",
		"layers.3.ffn.w1.weight":           "model.layers.3.mlp.gate_proj.weight",
		"layers.3.ffn.w3.weight":           "model.layers.3.mlp.up_proj.weight",
		"layers.3.ffn.w2.weight":           "model.layers.3.mlp.down_proj.weight",
		"ln_final.weight":                  "model.norm.weight",
		"lm_head.weight":                   "lm_head.weight",
	} {
		if got := TensorName(ours); got != want {
			t.Errorf("TensorName(%s) = %s, want %s", ours, got, want)
		}
	}
}
