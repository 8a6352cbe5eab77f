package coordinator

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/runmetrics"
)

// Collector exports the coordinator's status as Prometheus metrics, read
// at scrape time, and the runtime's counters and histograms (counters).
// A value not known yet (the loss before the first step, the val loss
// before the first evaluation, the throughput before a timed step) is left
// out rather than reported as 0.
type Collector struct {
	c *Coordinator

	step, maxSteps, loss, valLoss, lr, gradNorm, tokPerS, tokens, generation, world, eta, ckpt *prometheus.Desc
	phase, workerStep, workerTokPerS, workerStepTime, workerUp                                 *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector for c.
func NewCollector(c *Coordinator) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ringtrain_"+name, help, labels, nil)
	}
	return &Collector{
		c:              c,
		step:           d("step", "Optimizer steps completed."),
		maxSteps:       d("max_steps", "Optimizer steps of the job."),
		loss:           d("loss", "Global mean training loss of the newest step (absent before the first)."),
		valLoss:        d("val_loss", "Newest validation loss (absent before the first evaluation)."),
		lr:             d("learning_rate", "Learning rate of the newest step (absent until a step is reported)."),
		gradNorm:       d("grad_norm", "Gradient norm before clipping of the newest step (absent until a step is reported)."),
		tokPerS:        d("tokens_per_second", "Training throughput of the newest step, all workers together (absent until measured)."),
		tokens:         d("tokens_total", "Tokens trained on by this coordinator's generations."),
		generation:     d("generation", "Current generation ID (absent while none trains)."),
		world:          d("world_size", "Workers in the current generation."),
		eta:            d("eta_seconds", "Estimated time to the end of the job (absent while unknown)."),
		ckpt:           d("last_checkpoint_step", "Step of the newest committed checkpoint (-1: none)."),
		phase:          d("phase", "1 for the job's current phase.", "phase"),
		workerStep:     d("worker_step", "Steps completed, by worker.", "worker", "rank"),
		workerTokPerS:  d("worker_tokens_per_second", "Throughput, by worker (absent until it reported a timed step).", "worker", "rank"),
		workerStepTime: d("worker_step_seconds", "Duration of the newest step, by worker (absent until it reported one).", "worker", "rank"),
		workerUp:       d("worker_state", "1 for each worker's state.", "worker", "rank", "state"),
	}
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.step, m.maxSteps, m.loss, m.valLoss, m.lr, m.gradNorm, m.tokPerS, m.tokens,
		m.generation, m.world, m.eta, m.ckpt, m.phase, m.workerStep, m.workerTokPerS, m.workerStepTime, m.workerUp} {
		ch <- d
	}
	m.c.counters.describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Status()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gif := func(known bool, d *prometheus.Desc, v float64, labels ...string) {
		if known {
			g(d, v, labels...)
		}
	}
	g(m.step, float64(s.Step))
	g(m.maxSteps, float64(s.MaxSteps))
	gif(s.Reported || s.Step > 0, m.loss, s.Loss)
	gif(s.HasVal, m.valLoss, s.ValLoss)
	gif(s.Reported, m.lr, s.LR)
	gif(s.Reported, m.gradNorm, s.GradNorm)
	gif(s.TokensPerS > 0, m.tokPerS, s.TokensPerS)
	ch <- prometheus.MustNewConstMetric(m.tokens, prometheus.CounterValue, float64(s.Tokens))
	gif(s.Generation > 0, m.generation, float64(s.Generation))
	g(m.world, float64(s.World))
	gif(s.ETA > 0, m.eta, s.ETA.Seconds())
	g(m.ckpt, float64(s.LastCheckpoint))
	for _, p := range []Phase{PhaseWaiting, PhaseRunning, PhaseCheckpointing, PhaseRecovering, PhaseDone, PhaseFailed} {
		v := 0.0
		if p == s.Phase {
			v = 1
		}
		g(m.phase, v, string(p))
	}
	for _, w := range s.Workers {
		rank := strconv.Itoa(w.Rank)
		g(m.workerStep, float64(w.Step), w.Name, rank)
		gif(w.TokensPerS > 0, m.workerTokPerS, w.TokensPerS, w.Name, rank)
		gif(w.StepTime > 0, m.workerStepTime, w.StepTime.Seconds(), w.Name, rank)
		g(m.workerUp, 1, w.Name, rank, w.State)
	}
	m.c.counters.collect(ch)
}

// counters are the runtime's Prometheus counters and histograms: what
// happened since this coordinator started, counted from the events the
// machine records (Record actions) and from the checkpoint uploads and
// commits the runtime carries out.
type counters struct {
	generations, joined, lost, left, committed, ckptFailed prometheus.Counter
	ckptSeconds, recoverySeconds                           prometheus.Histogram

	mu       sync.Mutex
	uploadAt map[int]time.Time // checkpoint step → when its upload began
}

func newCounters() *counters {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_" + name, Help: help})
	}
	h := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ringtrain_" + name, Help: help, Buckets: buckets})
	}
	return &counters{
		generations: c("generations_total", "Generations this coordinator formed (generation events)."),
		joined:      c("workers_joined_total", "Workers that registered (joined events)."),
		lost:        c("workers_lost_total", "Members dropped without notice: lost or stalled events."),
		left:        c("workers_left_total", "Members that left gracefully (left events)."),
		committed:   c("checkpoints_committed_total", "Checkpoints committed."),
		ckptFailed:  c("checkpoints_failed_total", "Checkpoint uploads or commits that failed."),
		ckptSeconds: h("checkpoint_seconds", "From the start of a checkpoint's upload to its commit.",
			prometheus.ExponentialBuckets(0.05, 2, 14)),
		recoverySeconds: h("recovery_seconds", "From a membership change (failure, join, leave, restart) to the first step of the new generation (recovered events).",
			prometheus.ExponentialBuckets(0.1, 2, 12)),
		uploadAt: map[int]time.Time{},
	}
}

func (c *counters) all() []prometheus.Collector {
	return []prometheus.Collector{c.generations, c.joined, c.lost, c.left, c.committed, c.ckptFailed, c.ckptSeconds, c.recoverySeconds}
}

func (c *counters) describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.all() {
		m.Describe(ch)
	}
}

func (c *counters) collect(ch chan<- prometheus.Metric) {
	for _, m := range c.all() {
		m.Collect(ch)
	}
}

// event counts one recorded event.
func (c *counters) event(e *runmetrics.Event) {
	switch e.Event {
	case "generation":
		c.generations.Inc()
	case "joined":
		c.joined.Inc()
	case "lost", "stalled":
		c.lost.Inc()
	case "left":
		c.left.Inc()
	case "checkpoint":
		c.committed.Inc()
	case "checkpoint_failed":
		c.ckptFailed.Inc()
	case "recovered":
		c.recoverySeconds.Observe(e.Seconds)
	}
}

// uploadBegan notes when the upload of checkpoint step began.
func (c *counters) uploadBegan(step int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uploadAt[step] = at
}

// checkpointEnded observes the duration of checkpoint step, from the start
// of its upload, once it is committed (ok) or given up.
func (c *counters) checkpointEnded(step int, ok bool, at time.Time) {
	c.mu.Lock()
	began, found := c.uploadAt[step]
	delete(c.uploadAt, step)
	c.mu.Unlock()
	if ok && found {
		c.ckptSeconds.Observe(at.Sub(began).Seconds())
	}
}
