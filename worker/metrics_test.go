package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/trainer"
)

// A metered ring counts what a step hands to a real (in-memory) ring, in
// buckets and in one piece, and the metrics turn that into ring bytes.
func TestMeteredRingAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const world = 3
	net := allreduce.NewInmemNetwork()
	rings := AllreduceRings{Transport: net}
	meters := make([]*meteredRing, world)
	var wg sync.WaitGroup
	for rank := range world {
		wg.Go(func() {
			r, err := rings.Join(ctx, 1, rank, []string{"a", "b", "c"}, allreduce.WireFP32)
			if err != nil {
				t.Error(err)
				return
			}
			meters[rank] = &meteredRing{Ring: r}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, m := range meters {
			m.Close()
		}
	}()
	// One step: two buckets of 1000 and 500 elements, then the rest (250)
	// in one piece; then the float64 control vector, not counted.
	for rank, m := range meters {
		wg.Go(func() {
			a, b, c := make([]float32, 1000), make([]float32, 500), make([]float32, 250)
			h1 := m.StartOp(ctx, 0, a, allreduce.Sum)
			h2 := m.StartOp(ctx, 1, b, allreduce.Sum)
			if err := h1.Wait(); err != nil {
				t.Errorf("rank %d: %v", rank, err)
			}
			if err := h2.Wait(); err != nil {
				t.Errorf("rank %d: %v", rank, err)
			}
			if err := m.AllReduceOp(ctx, c, allreduce.Sum); err != nil {
				t.Errorf("rank %d: %v", rank, err)
			}
			if err := m.AllReduceFloat64(ctx, make([]float64, 2), allreduce.Sum); err != nil {
				t.Errorf("rank %d: %v", rank, err)
			}
		})
	}
	wg.Wait()
	elems, span := meters[0].take()
	if elems != 1750 || span <= 0 {
		t.Fatalf("take: %d elements over %v, want 1750 over a positive span", elems, span)
	}
	if e, s := meters[0].take(); e != 0 || s != 0 {
		t.Errorf("second take: %d elements over %v, want nothing", e, s)
	}

	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	if n, err := testutil.GatherAndCount(reg, "ringtrain_worker_rank", "ringtrain_worker_generation"); err != nil || n != 0 {
		t.Errorf("rank and generation before a generation: %d series (%v), want none", n, err)
	}
	m.joined(7, 2, world)
	res := trainer.Result{Forward: 3 * time.Millisecond, Backward: 6 * time.Millisecond, ReduceWait: time.Millisecond,
		Optimizer: 2 * time.Millisecond, Duration: 12 * time.Millisecond}
	m.step(res, elems, span, world)
	m.step(res, elems, span, world)
	m.checkpoint(time.Second, 1<<20)
	m.transfer("peer", 0.5, 4096)
	wantBytes := 2 * 4 * 1750 * 2 * float64(world-1) / world
	if got := testutil.ToFloat64(m.allreduceBytes); got != wantBytes {
		t.Errorf("all-reduce bytes %v, want %v", got, wantBytes)
	}
	for name, g := range map[string]struct {
		v    *prometheus.GaugeVec
		want float64
	}{"rank": {m.rank, 2}, "generation": {m.generation, 7}, "world": {m.world, 3}} {
		if got := testutil.ToFloat64(g.v.WithLabelValues()); got != g.want {
			t.Errorf("%s gauge %v, want %v", name, got, g.want)
		}
	}
	if got := testutil.ToFloat64(m.steps); got != 2 {
		t.Errorf("steps %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "ringtrain_worker_step_phase_seconds"); err != nil || n != 5 {
		t.Errorf("step phase histograms: %d (%v), want 5 (forward, backward, allreduce_wait, optimizer, step)", n, err)
	}
	if got := testutil.ToFloat64(m.transferBytes.WithLabelValues("peer")); got != 4096 {
		t.Errorf("state transfer bytes %v, want 4096", got)
	}
	var nilMetrics *Metrics // a worker without metrics
	nilMetrics.step(res, elems, span, world)
	nilMetrics.joined(1, 0, 1)
}
