package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// torchRef is testdata/torch_reference.json, written by
// scripts/torch_reference.py (PyTorch 1.13, float32) together with the
// initial weights, the gradients at them, the weights after two AdamW steps
// and the token shard.
type torchRef struct {
	Config    Config
	Batch     int
	Seq       int
	Optimizer struct {
		LR, MinLR, Beta1, Beta2, Eps, WeightDecay, GradClip float64
		Warmup, MaxSteps                                    int
	}
	Losses    []float64
	GradNorms []float64 `json:"grad_norms"`
	LRs       []float64
}

func loadTorchRef(t *testing.T) torchRef {
	t.Helper()
	b, err := os.ReadFile("testdata/torch_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		torchRef
		Optimizer map[string]float64
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	r := raw.torchRef
	o := raw.Optimizer
	r.Optimizer.LR, r.Optimizer.MinLR = o["lr"], o["min_lr"]
	r.Optimizer.Beta1, r.Optimizer.Beta2, r.Optimizer.Eps = o["beta1"], o["beta2"], o["eps"]
	r.Optimizer.WeightDecay, r.Optimizer.GradClip = o["weight_decay"], o["grad_clip"]
	r.Optimizer.Warmup, r.Optimizer.MaxSteps = int(o["warmup"]), int(o["max_steps"])
	return r
}

// readShardTokens reads an llm.c token shard (docs/data.md) by hand.
func readShardTokens(t *testing.T, path string) []int32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(b) != 20240520 {
		t.Fatal("bad magic")
	}
	n := int(binary.LittleEndian.Uint32(b[8:]))
	if len(b) != 1024+2*n {
		t.Fatalf("size %d for %d tokens", len(b), n)
	}
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32(binary.LittleEndian.Uint16(b[1024+2*i:]))
	}
	return toks
}

func relErr(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(b), 1e-12) }

// TestMatchesTorch checks the model against PyTorch: the loss at the
// initial weights to 1e-5 relative, every gradient element to
// 1e-6 + 1e-4·|g| (the ratio that matters here is the loss, which must
// match to 1e-4), then two training steps (clip, cosine lr, AdamW): both losses
// to 1e-5 relative, the norms before clipping to 1e-5 relative and every
// weight after the second step to 1e-5 absolute.
func TestMatchesTorch(t *testing.T) {
	ref := loadTorchRef(t)
	cfg, params, err := ReadModel("testdata/torch_init.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != ref.Config {
		t.Fatalf("config %+v, json says %+v", cfg, ref.Config)
	}
	toks := readShardTokens(t, "testdata/torch_tokens.bin")
	B, T := ref.Batch, ref.Seq
	x, y := toks[:B*T], toks[1:B*T+1]

	m, err := New(cfg, B, T)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Params, params)
	loss := m.Forward(x, y, B, T)
	if e := relErr(loss, ref.Losses[0]); e > 1e-5 {
		t.Fatalf("loss %.8g, torch %.8g (rel %.2g)", loss, ref.Losses[0], e)
	}
	t.Logf("loss %.8g, torch %.8g, rel diff %.2g", loss, ref.Losses[0], relErr(loss, ref.Losses[0]))
	m.ZeroGrad()
	m.Backward(1)
	tg, _, err := ReadSafetensors("testdata/torch_grads.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(m.Grads))
	if err := FillLayout(m.Layout(), want, tg, ""); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, p := range m.Layout() {
		for i := p.Offset; i < p.Offset+p.Size; i++ {
			d := math.Abs(float64(m.Grads[i] - want[i]))
			worst = max(worst, d)
			if d > 1e-6+1e-4*math.Abs(float64(want[i])) {
				t.Fatalf("grad %s[%d] = %.8g, torch %.8g", p.Name, i-p.Offset, m.Grads[i], want[i])
			}
		}
	}
	t.Logf("gradients: max abs diff %.3g", worst)

	o := ref.Optimizer
	opt := NewAdamW(m.Layout(), AdamWConfig{Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay})
	copy(m.Params, params)
	for step := 0; step < 2; step++ {
		m.ZeroGrad()
		l := m.Forward(x, y, B, T)
		if e := relErr(l, ref.Losses[step]); e > 1e-5 {
			t.Fatalf("step %d loss %.8g, torch %.8g", step, l, ref.Losses[step])
		}
		m.Backward(1)
		n := ClipGradNorm(m.Grads, o.GradClip)
		if e := relErr(n, ref.GradNorms[step]); e > 1e-5 {
			t.Fatalf("step %d grad norm %.8g, torch %.8g", step, n, ref.GradNorms[step])
		}
		lr := LR(step, o.LR, o.MinLR, o.Warmup, o.MaxSteps)
		if e := relErr(lr, ref.LRs[step]); e > 1e-12 {
			t.Fatalf("step %d lr %.17g, torch %.17g", step, lr, ref.LRs[step])
		}
		opt.Step(m.Params, m.Grads, lr, step)
	}
	l := m.Forward(x, y, B, T)
	if e := relErr(l, ref.Losses[2]); e > 1e-5 {
		t.Fatalf("loss after 2 steps %.8g, torch %.8g", l, ref.Losses[2])
	}
	t.Logf("loss after 2 AdamW steps %.8g, torch %.8g, rel diff %.2g", l, ref.Losses[2], relErr(l, ref.Losses[2]))
	_, p2, err := ReadModel("testdata/torch_step2.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	worst = 0
	for i := range p2 {
		d := math.Abs(float64(m.Params[i] - p2[i]))
		worst = max(worst, d)
		if d > 1e-5 {
			t.Fatalf("param %d after 2 steps %.8g, torch %.8g", i, m.Params[i], p2[i])
		}
	}
	t.Logf("weights after 2 steps: max abs diff %.3g", worst)
}
