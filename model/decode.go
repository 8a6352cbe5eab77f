package model

import (
	"fmt"
	"math"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// Decoder runs a model for generation with a KV cache. Prefill runs a whole
// prompt in one batched pass (the training layers on (1, T)) and keeps every
// layer's keys (after RoPE) and values; Step then runs one new token at the
// next absolute position against the cache. All buffers are sized once in
// NewDecoder for at most MaxT tokens, and Step allocates nothing.
//
// A Decoder reads the parameters it was given and never writes them. It is
// not safe for concurrent use; several Decoders may share one parameter
// buffer.
type Decoder struct {
	Config Config
	MaxT   int // cache capacity in tokens, ≤ context_length

	p        weights
	cos, sin []float32 // RoPE table (MaxT, HS/2)

	// the cache, per layer: keys after RoPE (NH, MaxT, HS) and values
	// transposed (NH, HS, MaxT), so that both attention products of a step
	// are matrix-vector products over contiguous rows
	kc, vc [][]float32
	n      int // tokens in the cache

	// activations for up to MaxT rows (Prefill) or one row (Step)
	x      []float32 // (MaxT, C) residual stream
	ln     []float32 // (MaxT, C) RMSNorm output
	rstd   []float32 // (MaxT)
	qkv    []float32 // (MaxT, 3C)
	att    []float32 // (NH, MaxT, MaxT) softmax of Prefill; Step uses (MaxT)
	atty   []float32 // (MaxT, C)
	h13    []float32 // (MaxT, 2F)
	swi    []float32 // (MaxT, F)
	lnf    []float32 // (C)
	logits []float32 // (V) of the last position
}

// NewDecoder makes a decoder for cfg that reads its weights from params
// (Config.Layout order, len NumParams; shared, not copied) and caches up to
// maxT tokens (0 < maxT ≤ context_length).
func NewDecoder(cfg Config, params []float32, maxT int) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(params) != cfg.NumParams() {
		return nil, fmt.Errorf("model: decoder: %d parameters, the config needs %d", len(params), cfg.NumParams())
	}
	if maxT <= 0 || maxT > cfg.ContextLength {
		return nil, fmt.Errorf("model: decoder: cache of %d tokens must be in [1, context_length %d]", maxT, cfg.ContextLength)
	}
	C, V, F, NH, L := cfg.DModel, cfg.VocabSize, cfg.DFF, cfg.NumHeads, cfg.NumLayers
	HS := C / NH
	T := maxT
	d := &Decoder{Config: cfg, MaxT: T, p: pointWeights(cfg, params)}
	d.cos = make([]float32, T*HS/2)
	d.sin = make([]float32, T*HS/2)
	ropeTable(d.cos, d.sin, T, HS, cfg.RopeTheta)

	buf := make([]float32, 2*L*T*C+T*C+T*C+T+3*T*C+NH*T*T+T*C+2*T*F+T*F+C+V)
	take := func(k int) []float32 {
		s := buf[:k:k]
		buf = buf[k:]
		return s
	}
	d.kc = make([][]float32, L)
	d.vc = make([][]float32, L)
	for l := range L {
		d.kc[l], d.vc[l] = take(T*C), take(T*C)
	}
	d.x, d.ln, d.rstd, d.qkv = take(T*C), take(T*C), take(T), take(3*T*C)
	d.att, d.atty, d.h13, d.swi = take(NH*T*T), take(T*C), take(2*T*F), take(T*F)
	d.lnf, d.logits = take(C), take(V)
	return d, nil
}

// Len is the number of tokens in the cache: the position the next Step
// token takes.
func (d *Decoder) Len() int { return d.n }

// Reset empties the cache.
func (d *Decoder) Reset() { d.n = 0 }

// Prefill empties the cache, runs tokens (positions 0..len−1) through the
// model in one batched pass, caches their keys and values and returns the
// logits (V) of the last position (valid until the next call). It panics
// if tokens is empty, longer than MaxT, or holds an id outside the
// vocabulary.
func (d *Decoder) Prefill(tokens []int32) []float32 {
	cfg := d.Config
	C, F, NH := cfg.DModel, cfg.DFF, cfg.NumHeads
	T := len(tokens)
	if T == 0 || T > d.MaxT {
		panic(fmt.Sprintf("model: Prefill of %d tokens, want 1..%d", T, d.MaxT))
	}
	checkTokens("input", tokens, cfg.VocabSize)
	encoderForward(d.x, tokens, d.p.wte, T, C)
	for l := range d.p.layers {
		w := &d.p.layers[l]
		rmsnormForward(d.ln, d.rstd, d.x, w.ln1, T, C)
		matmulForward(kernels.FP32, d.qkv, d.ln, w.qkv, T, C, 3*C)
		attentionForward(d.atty, d.att, d.qkv, d.cos, d.sin, 1, T, C, NH)
		d.store(l, 0, T) // q and k are rotated now
		matmulForwardAdd(kernels.FP32, d.x, d.atty, w.wo, T, C, C)
		rmsnormForward(d.ln, d.rstd, d.x, w.ln2, T, C)
		matmulForward(kernels.FP32, d.h13, d.ln, w.w13, T, C, 2*F)
		swigluForward(d.swi, d.h13, T, F)
		matmulForwardAdd(kernels.FP32, d.x, d.swi, w.w2, T, F, C)
	}
	d.n = T
	return d.head(d.x[(T-1)*C : T*C])
}

// Step runs one token at position Len() against the cache, appends its key
// and value and returns its logits (V), valid until the next call. It
// panics if the cache is full (Len() == MaxT) or tok is outside the
// vocabulary. It allocates nothing.
func (d *Decoder) Step(tok int32) []float32 {
	cfg := d.Config
	C, F, NH := cfg.DModel, cfg.DFF, cfg.NumHeads
	HS := C / NH
	pos := d.n
	if pos >= d.MaxT {
		panic(fmt.Sprintf("model: Step with a full cache (%d tokens)", d.MaxT))
	}
	if tok < 0 || int(tok) >= cfg.VocabSize {
		panic(fmt.Sprintf("model: Step token %d outside vocabulary [0, %d)", tok, cfg.VocabSize))
	}
	scale := float32(1 / math.Sqrt(float64(HS)))
	x := d.x[:C]
	copy(x, d.p.wte[int(tok)*C:int(tok+1)*C])
	ln, qkv, atty := d.ln[:C], d.qkv[:3*C], d.atty[:C]
	h13, swi := d.h13[:2*F], d.swi[:F]
	for l := range d.p.layers {
		w := &d.p.layers[l]
		rmsnormRow(ln, x, w.ln1)
		kernels.MatVec(qkv, ln, w.qkv, C, 3*C, false)
		q, k := qkv[:C], qkv[C:2*C]
		for h := range NH {
			ropeForward(q[h*HS:], HS, 1, HS, pos, d.cos, d.sin)
			ropeForward(k[h*HS:], HS, 1, HS, pos, d.cos, d.sin)
		}
		d.store(l, pos, 1)
		n := pos + 1
		s := d.att[:n]
		for h := range NH {
			qh := q[h*HS : (h+1)*HS]
			for j := range qh {
				qh[j] *= scale
			}
			// s = scale·q_h·K_hᵀ, softmax, atty_h = s·V_h (V_h stored transposed)
			kernels.MatVecRows(s, qh, d.kc[l][h*d.MaxT*HS:], HS, HS, n, false)
			causalSoftmax(s, pos)
			kernels.MatVecRows(atty[h*HS:(h+1)*HS], s, d.vc[l][h*HS*d.MaxT:], n, d.MaxT, HS, false)
		}
		kernels.MatVec(x, atty, w.wo, C, C, true)
		rmsnormRow(ln, x, w.ln2)
		kernels.MatVec(h13, ln, w.w13, C, 2*F, false)
		swigluRow(swi, h13)
		kernels.MatVec(x, swi, w.w2, F, C, true)
	}
	d.n++
	return d.head(x)
}

// store copies the keys and values of rows 0..T−1 of qkv, the tokens at
// positions pos..pos+T−1, into layer l's cache.
func (d *Decoder) store(l, pos, T int) {
	C, NH := d.Config.DModel, d.Config.NumHeads
	HS := C / NH
	for t := range T {
		row := d.qkv[t*3*C : (t+1)*3*C]
		for h := range NH {
			o := (h*d.MaxT + pos + t) * HS
			copy(d.kc[l][o:o+HS], row[C+h*HS:C+(h+1)*HS])
			vt := d.vc[l][h*HS*d.MaxT+pos+t:]
			for j, v := range row[2*C+h*HS : 2*C+(h+1)*HS] {
				vt[j*d.MaxT] = v
			}
		}
	}
}

// head returns the logits of one residual row: lm_head(RMSNorm_final(x)).
//
//	x (C)
func (d *Decoder) head(x []float32) []float32 {
	C, V := d.Config.DModel, d.Config.VocabSize
	rmsnormRow(d.lnf, x, d.p.lnf)
	kernels.MatVec(d.logits, d.lnf, d.p.lmHead, C, V, false)
	return d.logits
}

// rmsnormRow is rmsnormForward for one row (today the same arithmetic, so
// the same bits) on the caller alone: a row of C values is too little work
// to split over the thread pool.
//
//	out (C), inp (C), g (C)
func rmsnormRow(out, inp, g []float32) {
	var ss float64
	for _, v := range inp {
		ss += float64(v) * float64(v)
	}
	r := float32(1 / math.Sqrt(ss/float64(len(inp))+rmsnormEps))
	for j, v := range inp {
		out[j] = v * r * g[j]
	}
}

// swigluRow is swigluForward for one row, with the same arithmetic and no
// goroutines (see rmsnormRow).
//
//	out (F), h13 (2F)
func swigluRow(out, h13 []float32) {
	F := len(out)
	a, b := h13[:F], h13[F:2*F]
	for j, x := range a {
		out[j] = x / (1 + kernels.Expf(-x)) * b[j]
	}
}
