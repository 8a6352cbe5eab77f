package trainer

import (
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/model"
)

// A model and optimizer resumed from the checkpoint files continue bit for
// bit like the uninterrupted run: 4 steps straight versus 2 steps,
// checkpoint, load into a fresh model and optimizer, 2 more steps.
func TestStateFilesResumeExactly(t *testing.T) {
	cfg := model.Config{VocabSize: 13, ContextLength: 6, DModel: 8, NumLayers: 2, NumHeads: 2, DFF: 12, RopeTheta: 10000}
	const B, T = 2, 6
	x := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	y := []int32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0}
	acfg := model.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	train := func(m *model.Model, opt *model.AdamW, from, to int) {
		for s := from; s < to; s++ {
			m.ZeroGrad()
			m.Forward(x, y, B, T)
			m.Backward(1)
			model.ClipGradNorm(m.Grads, 1)
			opt.Step(m.Params, m.Grads, model.LR(s, 1e-2, 1e-3, 1, 4), s)
		}
	}
	a, _ := model.New(cfg, B, T)
	a.Init(1)
	oa := model.NewAdamW(a.Layout(), acfg)
	train(a, oa, 0, 2)

	run := t.TempDir()
	dir := checkpoint.Dir(run, 2)
	w := DirWriter(dir)
	if err := w(ModelFile, func(out io.Writer) error { return model.WriteModel(out, cfg, a.Params) }); err != nil {
		t.Fatal(err)
	}
	if err := WriteOptimizer(w, OptimizerFile, oa.Layout(), oa.M, oa.V); err != nil {
		t.Fatal(err)
	}
	if err := WriteState(w, State{Meta: checkpoint.Meta{Step: 2}, DataPosition: 2 * B, Seed: 1, WorldSize: 1, Model: cfg}); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Commit(dir); err != nil {
		t.Fatal(err)
	}
	train(a, oa, 2, 4)

	latest, _, err := checkpoint.Latest(run)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(latest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := model.New(st.Model, B, T)
	if err := model.LoadInto(filepath.Join(latest, ModelFile), st.Model, b.Params); err != nil {
		t.Fatal(err)
	}
	ob := model.NewAdamW(b.Layout(), acfg)
	if err := ReadOptimizer(latest, ob.Layout(), ob.M, ob.V); err != nil {
		t.Fatal(err)
	}
	train(b, ob, int(st.Step), 4)
	if !slices.Equal(a.Params, b.Params) || !slices.Equal(oa.M, ob.M) || !slices.Equal(oa.V, ob.V) {
		t.Fatal("resumed run differs from the uninterrupted one")
	}
}
