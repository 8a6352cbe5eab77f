package trainer

import (
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// TestPrecisionFromJob checks that train.precision reaches the model.
func TestPrecisionFromJob(t *testing.T) {
	for _, p := range []kernels.Precision{kernels.FP32, kernels.BF16} {
		j := tinyJob(t, "sequential")
		j.Train.Precision = p.String()
		tr, err := New(Options{Job: j, Rank: 0, World: 1})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Model.Precision != p {
			t.Errorf("train.precision %s: model runs %v", p, tr.Model.Precision)
		}
		if _, err := tr.TrainStep(t.Context(), Local{}, nil); err != nil {
			t.Fatal(err)
		}
		tr.Close()
	}
}
