package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/shard"
)

// tinyJob writes random shards into a temp dir and returns a job over them.
func tinyJob(t *testing.T, order string) *job.Job {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"train_000000.bin", "train_000001.bin", "val_000000.bin"} {
		toks := make([]uint16, 1000+rng.IntN(300))
		// Learnable: mostly "next token = previous + 3 mod 64".
		for i := 1; i < len(toks); i++ {
			toks[i] = (toks[i-1] + 3) % 64
			if rng.IntN(8) == 0 {
				toks[i] = uint16(rng.IntN(64))
			}
		}
		if err := shard.WriteFile(filepath.Join(dir, name), toks); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`
model: {vocab_size: 64, context_length: 16, d_model: 32, num_layers: 2, num_heads: 4, d_ff: 48}
data: {train: %q, val: %q, order: %s}
train: {global_batch: 8, micro_batch: 2, max_steps: 6, lr: 1.0e-2, min_lr: 1.0e-3, warmup: 2, grad_clip: 1.0, seed: 7}
eval: {every: 3, sequences: 12}
workers: {min: 1, max: 4}
`, filepath.Join(dir, "train_*.bin"), filepath.Join(dir, "val_*.bin"), order)
	j, err := job.Parse([]byte(text), "tiny.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// memReducer averages buffers over W goroutines in memory, in rank order,
// so every rank gets the same bits.
type memReducer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	world   int
	bufs    [][]float32
	arrived int
	round   int
	done    int
}

func newMemReducer(world int) *memReducer {
	r := &memReducer{world: world, bufs: make([][]float32, world)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

type rankReducer struct {
	*memReducer
	rank int
}

func (r rankReducer) AllReduce(_ context.Context, buf []float32) error {
	m := r.memReducer
	m.mu.Lock()
	defer m.mu.Unlock()
	round := m.round
	m.bufs[r.rank] = buf
	m.arrived++
	if m.arrived == m.world {
		sum := make([]float32, len(buf))
		for _, b := range m.bufs {
			for i, v := range b {
				sum[i] += v
			}
		}
		for _, b := range m.bufs {
			for i := range b {
				b[i] = sum[i] / float32(m.world)
			}
		}
		m.arrived = 0
		m.round++
		m.cond.Broadcast()
		return nil
	}
	for m.round == round {
		m.cond.Wait()
	}
	return nil
}

// run trains W ranks in goroutines and returns rank 0's losses and eval.
func run(t *testing.T, j *job.Job, world, steps int) ([]float64, float64, []*Trainer) {
	t.Helper()
	red := newMemReducer(world)
	trs := make([]*Trainer, world)
	for r := range world {
		tr, err := New(Options{Job: j, Rank: r, World: world})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		trs[r] = tr
	}
	losses := make([][]float64, world)
	evals := make([]float64, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			for range steps {
				res, err := trs[r].TrainStep(context.Background(), rankReducer{red, r})
				if err != nil {
					errs[r] = err
					return
				}
				losses[r] = append(losses[r], res.Loss)
			}
			evals[r], errs[r] = trs[r].Eval(context.Background(), rankReducer{red, r})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r := 1; r < world; r++ {
		if fmt.Sprint(losses[r]) != fmt.Sprint(losses[0]) || evals[r] != evals[0] {
			t.Fatalf("rank %d diverged from rank 0: %v vs %v", r, losses[r], losses[0])
		}
	}
	return losses[0], evals[0], trs
}

// The world size changes only the float rounding of a step, not the step:
// losses of W = 2, 4 track W = 1. (Tolerance: float32 sums in another order,
// amplified over 6 AdamW steps; observed ~1e-6 relative.)
func TestWorldSizeInvariance(t *testing.T) {
	for _, order := range []string{"sequential", "shuffled"} {
		j := tinyJob(t, order)
		ref, refEval, _ := run(t, j, 1, 6)
		if !(ref[5] < ref[0]) {
			t.Errorf("%s: loss did not fall: %v", order, ref)
		}
		for _, w := range []int{2, 4} {
			got, eval, _ := run(t, j, w, 6)
			for s := range ref {
				if d := math.Abs(got[s]-ref[s]) / ref[s]; d > 1e-4 {
					t.Errorf("%s W=%d step %d: loss %v, W=1 %v (rel %.2g)", order, w, s, got[s], ref[s], d)
				}
			}
			if d := math.Abs(eval-refEval) / refEval; d > 1e-4 {
				t.Errorf("%s W=%d: eval %v, W=1 %v", order, w, eval, refEval)
			}
		}
	}
}

// A run restored from a checkpoint continues bit for bit, even on another
// world size's rank 0 of 1.
func TestResumeIsExact(t *testing.T) {
	j := tinyJob(t, "shuffled")
	full, _, _ := run(t, j, 1, 6)

	first, _, trs := run(t, j, 1, 3)
	dir := checkpoint.Dir(t.TempDir(), trs[0].Step())
	if err := trs[0].SaveCheckpoint(dir, "job text", first[2]); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Commit(dir); err != nil {
		t.Fatal(err)
	}
	tr, err := New(Options{Job: j, Rank: 0, World: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Restore(dir); err != nil {
		t.Fatal(err)
	}
	if tr.Step() != 3 || tr.DataPosition() != 24 {
		t.Fatalf("restored step %d position %d, want 3 and 24", tr.Step(), tr.DataPosition())
	}
	for s := 3; s < 6; s++ {
		res, err := tr.TrainStep(context.Background(), Local{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != int64(s) || res.Loss != full[s] {
			t.Errorf("resumed step %d: loss %v, uninterrupted %v", res.Step, res.Loss, full[s])
		}
	}
}

func TestNewErrors(t *testing.T) {
	j := tinyJob(t, "sequential")
	if _, err := New(Options{Job: j, Rank: 0, World: 3}); err == nil {
		t.Error("world 3 does not divide global_batch 8: want an error")
	}
	bad := *j
	bad.Data.Train = filepath.Join(t.TempDir(), "none_*.bin")
	if _, err := New(Options{Job: &bad, Rank: 0, World: 1}); err == nil {
		t.Error("missing shards: want an error")
	}
}

// ringReducer adapts an allreduce.Ring to BucketReducer, as the worker does.
type ringReducer struct{ *allreduce.Ring }

func (r ringReducer) Start(ctx context.Context, bucket int, buf []float32) func() error {
	return r.Ring.Start(ctx, bucket, buf).Wait
}

// Gradient buckets reduced on a real ring while backward runs give the
// trajectory of one all-reduce after backward, on every rank alike.
func TestBucketedOverlap(t *testing.T) {
	j := tinyJob(t, "sequential")
	ref, _, _ := run(t, j, 2, 4)

	const world = 2
	net := allreduce.NewInmemNetwork()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	losses := make([][]float64, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			tr, err := New(Options{Job: j, Rank: r, World: world, BucketBytes: 8 << 10})
			if err != nil {
				errs[r] = err
				return
			}
			defer tr.Close()
			if len(tr.buckets) < 3 {
				errs[r] = fmt.Errorf("only %d buckets planned", len(tr.buckets))
				return
			}
			ring, err := allreduce.New(ctx, net, allreduce.Config{Generation: 1, Rank: r, WorldSize: world, Peers: []string{"a", "b"}})
			if err != nil {
				errs[r] = err
				return
			}
			defer ring.Close()
			for range 4 {
				res, err := tr.TrainStep(ctx, ringReducer{ring})
				if err != nil {
					errs[r] = err
					return
				}
				losses[r] = append(losses[r], res.Loss)
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	if fmt.Sprint(losses[0]) != fmt.Sprint(losses[1]) {
		t.Fatalf("ranks differ: %v vs %v", losses[0], losses[1])
	}
	for s := range ref {
		if d := math.Abs(losses[0][s]-ref[s]) / ref[s]; d > 1e-5 {
			t.Errorf("step %d: bucketed loss %v, unbucketed %v", s, losses[0][s], ref[s])
		}
	}
}

// A warm training step of one rank allocates nothing (the reducer aside).
func TestTrainStepAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tr, err := New(Options{Job: tinyJob(t, "shuffled"), Rank: 0, World: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if _, err := tr.TrainStep(ctx, Local{}); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(3, func() {
		if _, err := tr.TrainStep(ctx, Local{}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("TrainStep allocates %v times per step", n)
	}
}
