package model

import "fmt"

// ParamSpec locates one named parameter tensor inside the flat parameter
// (and gradient, and optimizer-moment) buffer.
type ParamSpec struct {
	Name   string // the name of docs/model.md, e.g. "layers.0.attn.q_proj.weight"
	Shape  []int  // (d_out, d_in) for linear maps, (d) for RMSNorm gains
	Offset int    // first element in the flat buffer
	Size   int    // number of elements, the product of Shape
	Decay  bool   // weight decay applies: true for 2-D parameters only
}

// Layout lists every parameter in buffer order: token_embeddings, then per
// layer ln1, ln2, q_proj, k_proj, v_proj, output_proj, ffn.w1, ffn.w3,
// ffn.w2, then ln_final and lm_head (docs/model.md).
//
// q, k and v are adjacent, so together they are one (3d, d) matrix; w1 and
// w3 are adjacent, one (2·d_ff, d) matrix. The forward pass relies on that.
func (c Config) Layout() []ParamSpec {
	V, d, f := c.VocabSize, c.DModel, c.DFF
	var out []ParamSpec
	off := 0
	add := func(name string, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		out = append(out, ParamSpec{Name: name, Shape: shape, Offset: off, Size: n, Decay: len(shape) == 2})
		off += n
	}
	add("token_embeddings.weight", V, d)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("layers.%d.", i)
		add(p+"ln1.weight", d)
		add(p+"ln2.weight", d)
		add(p+"attn.q_proj.weight", d, d)
		add(p+"attn.k_proj.weight", d, d)
		add(p+"attn.v_proj.weight", d, d)
		add(p+"attn.output_proj.weight", d, d)
		add(p+"ffn.w1.weight", f, d)
		add(p+"ffn.w3.weight", f, d)
		add(p+"ffn.w2.weight", d, f)
	}
	add("ln_final.weight", d)
	add("lm_head.weight", V, d)
	return out
}

// NumParams is the total number of parameters (the flat buffer's length).
func (c Config) NumParams() int {
	V, d, f := c.VocabSize, c.DModel, c.DFF
	return 2*V*d + d + c.NumLayers*(2*d+4*d*d+3*f*d)
}

// TrainFLOPsPerToken counts the floating-point operations of one training
// token (forward and backward) on sequences of T tokens, as PaLM's
// appendix B does: 6·N for the parameter products, N the parameters
// without the token embedding (a lookup; the untied LM head counts), and
// 12·L·d·T for attention's two products of each layer (the causal mask's
// skipped half is counted, as PaLM does).
func (c Config) TrainFLOPsPerToken(T int) (params, attention float64) {
	n := c.NumParams() - c.VocabSize*c.DModel
	return 6 * float64(n), 12 * float64(c.NumLayers) * float64(c.DModel) * float64(T)
}

// weights are named views into one flat buffer (parameters or gradients).
type weights struct {
	wte, lnf, lmHead []float32
	layers           []layerWeights
}

type layerWeights struct {
	ln1, ln2 []float32 // (d)
	qkv      []float32 // (3d, d): q_proj, k_proj, v_proj stacked
	wo       []float32 // (d, d)
	w13      []float32 // (2·d_ff, d): w1, w3 stacked
	w2       []float32 // (d, d_ff)
}

// pointWeights slices buf (len NumParams) into named views, following Layout.
func pointWeights(c Config, buf []float32) weights {
	lay := c.Layout()
	get := func(i, n int) []float32 { // n adjacent tensors starting at Layout index i
		s := lay[i].Offset
		e := lay[i+n-1].Offset + lay[i+n-1].Size
		return buf[s:e:e]
	}
	w := weights{wte: get(0, 1), layers: make([]layerWeights, c.NumLayers)}
	for l := range w.layers {
		b := 1 + 9*l
		w.layers[l] = layerWeights{
			ln1: get(b, 1), ln2: get(b+1, 1),
			qkv: get(b+2, 3), wo: get(b+5, 1),
			w13: get(b+6, 2), w2: get(b+8, 1),
		}
	}
	n := len(lay)
	w.lnf = get(n-2, 1)
	w.lmHead = get(n-1, 1)
	return w
}
