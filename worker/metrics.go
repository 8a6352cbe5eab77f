package worker

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/trainer"
)

// Metrics are a worker's Prometheus metrics: where the time of a step
// goes, what the all-reduce moves, how long checkpoints and state
// transfers take, and the generation it trains in. A nil *Metrics records
// nothing. The generation, rank and world gauges appear once the worker
// has joined a generation.
type Metrics struct {
	stepPhase        *prometheus.HistogramVec // phase: forward, backward, allreduce_wait, optimizer, step
	steps            prometheus.Counter
	allreduceSeconds prometheus.Histogram
	allreduceBytes   prometheus.Counter
	ckptSeconds      prometheus.Histogram
	ckptBytes        prometheus.Counter
	transferSeconds  *prometheus.HistogramVec // from: peer, checkpoint
	transferBytes    *prometheus.CounterVec
	generation, rank *prometheus.GaugeVec // no labels: absent until set
	world            *prometheus.GaugeVec
}

// NewMetrics registers a worker's metrics with reg (wrap it with
// prometheus.WrapRegistererWith to label them with the worker's name when
// several workers share one registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	secs := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms … 33 s
	m := &Metrics{
		stepPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ringtrain_worker_step_phase_seconds",
			Help:    "Time of each phase of a training step: forward and backward compute, the wait for the all-reduce after backward, clip+AdamW, and the whole step.",
			Buckets: secs}, []string{"phase"}),
		steps: prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_worker_steps_total", Help: "Training steps this worker completed."}),
		allreduceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ringtrain_worker_allreduce_seconds",
			Help: "Per step, from the first gradient bucket handed to the ring to the last one reduced (overlapping backward).", Buckets: secs}),
		allreduceBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_worker_allreduce_bytes_total",
			Help: "Gradient bytes this rank sent around the ring: the fp32 gradient size × 2(W−1)/W per step."}),
		ckptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ringtrain_worker_checkpoint_upload_seconds",
			Help: "Time to write this rank's checkpoint part and upload it to the coordinator.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
		ckptBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_worker_checkpoint_upload_bytes_total",
			Help: "Checkpoint bytes uploaded to the coordinator."}),
		transferSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ringtrain_worker_state_transfer_seconds",
			Help:    "Time to get the training state at the start of a generation: from a live peer, or from the coordinator's checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}, []string{"from"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ringtrain_worker_state_transfer_bytes_total",
			Help: "Training state bytes received at the start of generations."}, []string{"from"}),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringtrain_worker_generation",
			Help: "The generation this worker joined last."}, nil),
		rank: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringtrain_worker_rank",
			Help: "This worker's rank in the generation it joined last."}, nil),
		world: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringtrain_worker_world_size",
			Help: "Workers in the generation this worker joined last."}, nil),
	}
	reg.MustRegister(m.stepPhase, m.steps, m.allreduceSeconds, m.allreduceBytes, m.ckptSeconds, m.ckptBytes,
		m.transferSeconds, m.transferBytes, m.generation, m.rank, m.world)
	return m
}

// joined records the generation the worker trains in.
func (m *Metrics) joined(gen int64, rank, world int) {
	if m == nil {
		return
	}
	m.generation.WithLabelValues().Set(float64(gen))
	m.rank.WithLabelValues().Set(float64(rank))
	m.world.WithLabelValues().Set(float64(world))
}

// step records one training step and what its gradient all-reduce did:
// elems fp32 elements reduced over span, in a ring of world ranks.
func (m *Metrics) step(res trainer.Result, elems int, span time.Duration, world int) {
	if m == nil {
		return
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"forward", res.Forward}, {"backward", res.Backward}, {"allreduce_wait", res.ReduceWait}, {"optimizer", res.Optimizer}, {"step", res.Duration}} {
		m.stepPhase.WithLabelValues(p.name).Observe(p.d.Seconds())
	}
	m.steps.Inc()
	if world > 1 && elems > 0 {
		m.allreduceSeconds.Observe(span.Seconds())
		m.allreduceBytes.Add(4 * float64(elems) * 2 * float64(world-1) / float64(world))
	}
}

// checkpoint records an upload of bytes that took d.
func (m *Metrics) checkpoint(d time.Duration, bytes uint64) {
	if m == nil {
		return
	}
	m.ckptSeconds.Observe(d.Seconds())
	m.ckptBytes.Add(float64(bytes))
}

// transfer records a state transfer from "peer" or "checkpoint".
func (m *Metrics) transfer(from string, seconds float64, bytes uint64) {
	if m == nil {
		return
	}
	m.transferSeconds.WithLabelValues(from).Observe(seconds)
	m.transferBytes.WithLabelValues(from).Add(float64(bytes))
}

// meteredRing is the ring as one training step sees it: it counts the fp32
// elements handed to the ring and times the span from the first of them
// to the last one reduced. take returns and resets the figures.
type meteredRing struct {
	Ring
	mu          sync.Mutex
	elems       int
	first, last time.Time
	pending     sync.WaitGroup
}

func (m *meteredRing) began(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.elems == 0 {
		m.first = time.Now()
	}
	m.elems += n
}

func (m *meteredRing) ended() {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.last) {
		m.last = now
	}
}

// StartOp implements trainer.BucketReducer.
func (m *meteredRing) StartOp(ctx context.Context, bucket int, buf []float32, o allreduce.Op) *allreduce.Handle {
	m.began(len(buf))
	h := m.Ring.StartOp(ctx, bucket, buf, o)
	m.pending.Go(func() {
		select {
		case <-h.Done():
			m.ended()
		case <-m.Ring.Done(): // the ring stopped: the step fails, nothing to time
		}
	})
	return h
}

// AllReduceOp implements trainer.Reducer.
func (m *meteredRing) AllReduceOp(ctx context.Context, buf []float32, o allreduce.Op) error {
	m.began(len(buf))
	err := m.Ring.AllReduceOp(ctx, buf, o)
	m.ended()
	return err
}

// take returns the elements reduced and the span since the last take.
func (m *meteredRing) take() (elems int, span time.Duration) {
	m.pending.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	elems, span = m.elems, m.last.Sub(m.first)
	m.elems, m.first, m.last = 0, time.Time{}, time.Time{}
	return elems, max(span, 0)
}
