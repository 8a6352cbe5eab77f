package trainer

import (
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

// TestSumLoss: whatever the batch size, SumLoss is the sum of the losses
// of the sequences one at a time (float32 rounding of the batched forward:
// 1e-5 relative), and done counts every sequence once.
func TestSumLoss(t *testing.T) {
	j := tinyJob(t, "sequential")
	cfg, err := ModelConfig(j.Model)
	if err != nil {
		t.Fatal(err)
	}
	T := cfg.ContextLength
	ds, err := shard.OpenGlob(j.Data.Val, cfg.VocabSize, T)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	one, err := model.New(cfg, 1, T)
	if err != nil {
		t.Fatal(err)
	}
	one.Init(3)
	lo, hi := 2, ds.NumSequences()-1
	var want float64
	x, y := make([]int32, T), make([]int32, T)
	for i := lo; i < hi; i++ {
		ds.Sequence(i, x, y)
		want += one.Forward(x, y, 1, T)
	}
	for _, B := range []int{1, 2, 5, 64} {
		m, err := model.New(cfg, B, T)
		if err != nil {
			t.Fatal(err)
		}
		copy(m.Params, one.Params)
		seen, passes := 0, 0
		got := SumLoss(m, ds, lo, hi, func(n int) { seen += n; passes++ })
		if math.Abs(got-want) > 1e-5*math.Abs(want) {
			t.Errorf("batch %d: SumLoss %v, want %v", B, got, want)
		}
		if seen != hi-lo || passes != (hi-lo+B-1)/B {
			t.Errorf("batch %d: done saw %d sequences in %d passes, want %d in %d", B, seen, passes, hi-lo, (hi-lo+B-1)/B)
		}
	}
	if got := SumLoss(one, ds, 4, 4, nil); got != 0 {
		t.Errorf("empty range: %v", got)
	}
}
