package coordinator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ringtrain/ringtrain/job"
)

// The job travels to the workers inside the generation, as JSON: every
// field must survive the trip.
func TestGenerationJSONRoundTrip(t *testing.T) {
	for _, src := range []string{
		`{name: a, model: {preset: small}, data: {train: "/d/train_*.bin", val: "/d/val_*.bin", order: shuffled}, train: {seed: 18446744073709551615}}`,
		`{name: b, model: {vocab_size: 64, context_length: 16, d_model: 32, num_layers: 2, num_heads: 4, d_ff: 64, rope_theta: 500000}, init: "/x.safetensors", data: {train: "/t_*.bin"}, eval: {every: 0}, checkpoint: {every: 0, keep: 1}, workers: {min: 2, max: 2}, train: {global_batch: 4, micro_batch: 2, grad_clip: 0}}`,
	} {
		j, err := job.Parse([]byte(src), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		g := Generation{ID: 3, Job: j, JobText: src, RunDir: "/r", Coordinator: "c:1", StartStep: 4, Resume: "/r/checkpoints/step_00000004",
			Members: []RankedMember{{Name: "a", Address: "a:1", Rank: 0, SeqLo: 0, SeqHi: 2}, {Name: "b", Address: "b:1", Rank: 1, SeqLo: 2, SeqHi: 4}}}
		b, err := json.Marshal(&g)
		if err != nil {
			t.Fatal(err)
		}
		var back Generation
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&g, &back) {
			t.Errorf("round trip changed the generation:\n%+v\n%+v", *g.Job, *back.Job)
		}
		if back.Rank("b") != 1 || back.Rank("z") != -1 || !reflect.DeepEqual(back.Addresses(), []string{"a:1", "b:1"}) {
			t.Errorf("ranks/addresses of %+v", back.Members)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"w0": true, "host-7071": true, "": false, "a/b": false, "a b": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}
