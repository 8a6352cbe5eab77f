package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// Model is a transformer with its parameters, gradients and the activation
// buffers of one forward/backward pass for batches up to (MaxB, MaxT).
// Nothing is allocated per step. A Model is not safe for concurrent use.
type Model struct {
	Config     Config
	MaxB, MaxT int

	// Params holds every parameter in Layout order; Grads has the same
	// layout. Both are one contiguous buffer each, so an all-reduce can
	// work on Grads in one piece or by offset ranges.
	Params, Grads []float32

	// GradsReady, if set, is called during Backward each time a suffix of
	// Grads is complete for this pass: Grads[off:] will not change again
	// before the next Backward. off falls on a parameter boundary and
	// decreases: the final norm and LM head first, then each block from the
	// last, then 0. A data-parallel trainer starts reducing gradient
	// buckets from it while backward goes on (PyTorch DDP's bucket hooks).
	GradsReady func(off int)

	// Precision is the arithmetic of the matrix products of Forward and
	// Backward (FP32 unless set): with kernels.BF16 every product, the
	// attention's included, rounds its inputs to bfloat16 and accumulates
	// in float32, as torch.autocast does on CPU; parameters, gradients,
	// activations and every element-wise layer stay float32. It may change
	// between steps. See docs/precision.md.
	Precision kernels.Precision

	layout []ParamSpec
	// readyOffs[l] is the offset of block l's first parameter;
	// readyOffs[L] that of ln_final (the parameters after the blocks).
	readyOffs []int
	p, g      weights

	cos, sin []float32 // RoPE table (MaxT, HS/2)

	// activations, sized for (MaxB, MaxT)
	encoded []float32 // (B, T, C) input of layer 0
	layers  []layerActs
	lnf     []float32 // (B, T, C)
	lnfRstd []float32 // (B, T)
	logits  []float32 // (B, T, V): logits, or ∂(mean loss)/∂logits after a forward with targets
	losses  []float32 // (B, T)

	// backward scratch, shared by all layers
	dres, dln, datty, dswi, dqkv, dh13 []float32

	// the last forward pass
	b, t    int
	targets []int32 // copy of the targets, (B, T)
	inputs  []int32 // copy of the inputs, (B, T)
	hasLoss bool
}

// layerActs are the activations one block caches for its backward pass.
type layerActs struct {
	ln1, ln1Rstd []float32 // (B, T, C), (B, T)
	qkv          []float32 // (B, T, 3C), q and k after RoPE
	lse          []float32 // (B, NH, T) log-sum-exp of each attention row
	atty         []float32 // (B, T, C) attention output before output_proj
	res2         []float32 // (B, T, C) z = x + MHA(...)
	ln2, ln2Rstd []float32 // (B, T, C), (B, T)
	h13          []float32 // (B, T, 2F) W1·x | W3·x
	swi          []float32 // (B, T, F) SiLU(W1·x) ⊙ W3·x
	res3         []float32 // (B, T, C) y = z + FFN(...), the block output
}

// New allocates a model for batches of at most B sequences of at most T
// tokens (T ≤ context_length). The parameters are zero until Init or a load.
func New(cfg Config, B, T int) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 || T <= 0 || T > cfg.ContextLength {
		return nil, fmt.Errorf("model: batch (%d, %d) must be positive with T ≤ context_length %d", B, T, cfg.ContextLength)
	}
	C, V, F, NH, L := cfg.DModel, cfg.VocabSize, cfg.DFF, cfg.NumHeads, cfg.NumLayers
	HS := C / NH
	BT := B * T
	n := cfg.NumParams()
	m := &Model{
		Config: cfg, MaxB: B, MaxT: T,
		Params: make([]float32, n),
		Grads:  make([]float32, n),
		layout: cfg.Layout(),
	}
	m.p = pointWeights(cfg, m.Params)
	m.g = pointWeights(cfg, m.Grads)
	for _, spec := range m.layout {
		if spec.Name == "ln_final.weight" || strings.HasSuffix(spec.Name, ".ln1.weight") {
			m.readyOffs = append(m.readyOffs, spec.Offset)
		}
	}
	m.cos = make([]float32, T*HS/2)
	m.sin = make([]float32, T*HS/2)
	ropeTable(m.cos, m.sin, T, HS, cfg.RopeTheta)

	// one allocation for all activations, pointed into like llm.c does
	perLayer := 5*BT*C + 2*BT + 3*BT*C + B*NH*T + 3*BT*F
	total := BT*C + L*perLayer + BT*C + BT + BT*V + BT + 3*BT*C + BT*F + 3*BT*C + 2*BT*F
	buf := make([]float32, total)
	take := func(k int) []float32 {
		s := buf[:k:k]
		buf = buf[k:]
		return s
	}
	m.encoded = take(BT * C)
	m.layers = make([]layerActs, L)
	for l := range m.layers {
		m.layers[l] = layerActs{
			ln1: take(BT * C), ln1Rstd: take(BT), qkv: take(3 * BT * C), lse: take(B * NH * T),
			atty: take(BT * C), res2: take(BT * C), ln2: take(BT * C), ln2Rstd: take(BT),
			h13: take(2 * BT * F), swi: take(BT * F), res3: take(BT * C),
		}
	}
	m.lnf = take(BT * C)
	m.lnfRstd = take(BT)
	m.logits = take(BT * V)
	m.losses = take(BT)
	m.dres, m.dln, m.datty = take(BT*C), take(BT*C), take(BT*C)
	m.dswi = take(BT * F)
	m.dqkv = take(3 * BT * C)
	m.dh13 = take(2 * BT * F)
	m.targets = make([]int32, BT)
	m.inputs = make([]int32, BT)
	return m, nil
}

// Layout is the parameter table of the model's config (shared, do not modify).
func (m *Model) Layout() []ParamSpec { return m.layout }

// Init sets the parameters as docs/model.md says, deterministically in seed:
// linear weights truncated normal with std √(2/(d_in+d_out)) cut at ±3 std,
// token embeddings truncated normal std 1 cut at ±3, RMSNorm gains 1.
// Tensors are filled in Layout order from one PCG stream.
func (m *Model) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, p := range m.layout {
		dst := m.Params[p.Offset : p.Offset+p.Size]
		if len(p.Shape) == 1 {
			for i := range dst {
				dst[i] = 1
			}
			continue
		}
		std := 1.0
		if p.Name != "token_embeddings.weight" {
			std = math.Sqrt(2 / float64(p.Shape[0]+p.Shape[1]))
		}
		for i := range dst {
			x := rng.NormFloat64()
			for x < -3 || x > 3 {
				x = rng.NormFloat64()
			}
			dst[i] = float32(x * std)
		}
	}
}

// ZeroGrad sets every gradient to zero.
func (m *Model) ZeroGrad() { clear(m.Grads) }

// Logits returns the output of the last Forward, (B·T, V) row-major: the
// logits after Forward without targets; after Forward with targets the
// gradient of the mean loss with respect to the logits,
// (softmax − onehot(target))/(B·T).
func (m *Model) Logits() []float32 { return m.logits[:m.b*m.t*m.Config.VocabSize] }

// Losses returns the per-position cross-entropy of the last Forward with
// targets, (B·T).
func (m *Model) Losses() []float32 { return m.losses[:m.b*m.t] }

// Forward runs the model on inputs (B, T) of token ids. With targets (B, T)
// it returns the mean cross-entropy over all B·T positions and readies
// Backward; with targets nil it returns 0 and leaves the logits in Logits.
// It panics if B or T exceed the sizes given to New or a token is out of
// the vocabulary.
func (m *Model) Forward(inputs, targets []int32, B, T int) float64 {
	cfg := m.Config
	C, V, F, NH := cfg.DModel, cfg.VocabSize, cfg.DFF, cfg.NumHeads
	BT := B * T
	if B <= 0 || T <= 0 || B > m.MaxB || T > m.MaxT {
		panic(fmt.Sprintf("model: Forward with (B, T) = (%d, %d) exceeds (%d, %d)", B, T, m.MaxB, m.MaxT))
	}
	if len(inputs) < BT || (targets != nil && len(targets) < BT) {
		panic(fmt.Sprintf("model: Forward needs %d tokens, got %d inputs and %d targets", BT, len(inputs), len(targets)))
	}
	checkTokens("input", inputs[:BT], V)
	m.b, m.t = B, T
	copy(m.inputs, inputs[:BT])
	m.hasLoss = targets != nil
	if m.hasLoss {
		checkTokens("target", targets[:BT], V)
		copy(m.targets, targets[:BT])
	}

	p := m.Precision
	encoderForward(m.encoded, inputs, m.p.wte, BT, C)
	x := m.encoded
	for l := range m.layers {
		a, w := &m.layers[l], &m.p.layers[l]
		kernels.RMSNormForward(a.ln1, a.ln1Rstd, x, w.ln1, BT, C, rmsnormEps)
		matmulForward(p, a.qkv, a.ln1, w.qkv, BT, C, 3*C)
		kernels.RoPEForward(a.qkv, m.cos, m.sin, B, T, 2*NH, C/NH, 3*C, 0) // q and k: 2·NH heads
		kernels.CausalAttentionForward(p, a.atty, a.lse, a.qkv, a.qkv[C:], a.qkv[2*C:], B, T, NH, C/NH, 3*C, C)
		copy(a.res2[:BT*C], x[:BT*C])
		matmulForwardAdd(p, a.res2, a.atty, w.wo, BT, C, C)
		kernels.RMSNormForward(a.ln2, a.ln2Rstd, a.res2, w.ln2, BT, C, rmsnormEps)
		matmulForward(p, a.h13, a.ln2, w.w13, BT, C, 2*F)
		kernels.SwiGLUForward(a.swi, a.h13, BT, F)
		copy(a.res3[:BT*C], a.res2[:BT*C])
		matmulForwardAdd(p, a.res3, a.swi, w.w2, BT, F, C)
		x = a.res3
	}
	kernels.RMSNormForward(m.lnf, m.lnfRstd, x, m.p.lnf, BT, C, rmsnormEps)
	matmulForward(p, m.logits, m.lnf, m.p.lmHead, BT, C, V)
	if !m.hasLoss {
		return 0
	}
	// losses, and the logits replaced by the gradient of the mean loss
	kernels.SoftmaxCrossEntropy(m.losses, m.logits, m.targets, BT, V, 1/float32(BT))
	var sum float64
	for _, l := range m.losses[:BT] {
		sum += float64(l)
	}
	return sum / float64(BT)
}

func checkTokens(what string, toks []int32, V int) {
	for i, t := range toks {
		if t < 0 || int(t) >= V {
			panic(fmt.Sprintf("model: %s token %d at position %d outside vocabulary [0, %d)", what, t, i, V))
		}
	}
}

// Backward accumulates into Grads the gradient of scale·(mean loss of the
// last Forward). For gradient accumulation over micro-batches that make up
// one global batch, call it once per micro-batch with
// scale = micro-batch tokens / global-batch tokens.
// It panics if the last Forward had no targets.
func (m *Model) Backward(scale float32) {
	if !m.hasLoss {
		panic("model: Backward without a Forward with targets")
	}
	m.hasLoss = false // the logit gradients are consumed below
	cfg := m.Config
	C, V, F, NH := cfg.DModel, cfg.VocabSize, cfg.DFF, cfg.NumHeads
	B, T := m.b, m.t
	BT := B * T
	p := m.Precision

	// m.logits holds ∂(mean loss)/∂logits; scale enters as the Gemm alpha
	dlnf := m.dln[:BT*C]
	last := m.encoded
	if len(m.layers) > 0 {
		last = m.layers[len(m.layers)-1].res3
	}
	matmulBackwardScaledSet(p, dlnf, m.g.lmHead, m.logits, m.lnf, m.p.lmHead, BT, C, V, scale)
	dres := m.dres[:BT*C]
	clear(dres)
	kernels.RMSNormBackward(dres, m.g.lnf, dlnf, last, m.p.lnf, m.lnfRstd, BT, C)
	m.gradsReady(m.readyOffs[len(m.layers)])

	for l := len(m.layers) - 1; l >= 0; l-- {
		a, w, g := &m.layers[l], &m.p.layers[l], &m.g.layers[l]
		x := m.encoded
		if l > 0 {
			x = m.layers[l-1].res3
		}
		// y = z + W2·swi: dres stays the gradient of z
		dswi := m.dswi[:BT*F]
		matmulBackwardSet(p, dswi, g.w2, dres, a.swi, w.w2, BT, F, C)
		kernels.SwiGLUBackward(m.dh13, dswi, a.h13, BT, F)
		dln := m.dln[:BT*C]
		matmulBackwardSet(p, dln, g.w13, m.dh13, a.ln2, w.w13, BT, C, 2*F)
		kernels.RMSNormBackward(dres, g.ln2, dln, a.res2, w.ln2, a.ln2Rstd, BT, C)
		// z = x + Wo·atty: dres stays the gradient of x
		datty := m.datty[:BT*C]
		matmulBackwardSet(p, datty, g.wo, dres, a.atty, w.wo, BT, C, C)
		dqkv := m.dqkv[:3*BT*C]
		clear(dqkv)
		kernels.CausalAttentionBackward(p, dqkv, dqkv[C:], dqkv[2*C:], datty, a.qkv, a.qkv[C:], a.qkv[2*C:], a.atty, a.lse, B, T, NH, C/NH, 3*C, C)
		kernels.RoPEBackward(dqkv, m.cos, m.sin, B, T, 2*NH, C/NH, 3*C, 0) // dq and dk
		matmulBackwardSet(p, dln, g.qkv, m.dqkv, a.ln1, w.qkv, BT, C, 3*C)
		kernels.RMSNormBackward(dres, g.ln1, dln, x, w.ln1, a.ln1Rstd, BT, C)
		m.gradsReady(m.readyOffs[l])
	}
	encoderBackward(m.g.wte, dres, m.inputs, BT, C)
	m.gradsReady(0)
}

func (m *Model) gradsReady(off int) {
	if m.GradsReady != nil {
		m.GradsReady(off)
	}
}
