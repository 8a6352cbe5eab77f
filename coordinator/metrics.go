package coordinator

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the coordinator's status as Prometheus metrics, read
// at scrape time.
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
		loss:           d("loss", "Global mean training loss of the newest step."),
		valLoss:        d("val_loss", "Newest validation loss."),
		lr:             d("learning_rate", "Learning rate of the newest step."),
		gradNorm:       d("grad_norm", "Gradient norm before clipping of the newest step."),
		tokPerS:        d("tokens_per_second", "Training throughput of the newest step, all workers together."),
		tokens:         d("tokens_total", "Tokens trained on by this coordinator's generations."),
		generation:     d("generation", "Current generation ID."),
		world:          d("world_size", "Workers in the current generation."),
		eta:            d("eta_seconds", "Estimated time to the end of the job."),
		ckpt:           d("last_checkpoint_step", "Step of the newest committed checkpoint (-1: none)."),
		phase:          d("phase", "1 for the job's current phase.", "phase"),
		workerStep:     d("worker_step", "Steps completed, by worker.", "worker", "rank"),
		workerTokPerS:  d("worker_tokens_per_second", "Throughput, by worker.", "worker", "rank"),
		workerStepTime: d("worker_step_seconds", "Duration of the newest step, by worker.", "worker", "rank"),
		workerUp:       d("worker_state", "1 for each worker's state.", "worker", "rank", "state"),
	}
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.step, m.maxSteps, m.loss, m.valLoss, m.lr, m.gradNorm, m.tokPerS, m.tokens,
		m.generation, m.world, m.eta, m.ckpt, m.phase, m.workerStep, m.workerTokPerS, m.workerStepTime, m.workerUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Status()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(m.step, float64(s.Step))
	g(m.maxSteps, float64(s.MaxSteps))
	g(m.loss, s.Loss)
	g(m.valLoss, s.ValLoss)
	g(m.lr, s.LR)
	g(m.gradNorm, s.GradNorm)
	g(m.tokPerS, s.TokensPerS)
	ch <- prometheus.MustNewConstMetric(m.tokens, prometheus.CounterValue, float64(s.Tokens))
	g(m.generation, float64(s.Generation))
	g(m.world, float64(s.World))
	g(m.eta, s.ETA.Seconds())
	g(m.ckpt, float64(s.LastCheckpoint))
	for _, p := range []Phase{PhaseWaiting, PhaseRunning, PhaseCheckpointing, PhaseRecovering, PhaseDone, PhaseFailed} {
		v := 0.0
		if p == s.Phase {
			v = 1
		}
		g(m.phase, v, string(p))
	}
	for _, w := range s.Workers {
		rank := itoa(w.Rank)
		g(m.workerStep, float64(w.Step), w.Name, rank)
		g(m.workerTokPerS, w.TokensPerS, w.Name, rank)
		g(m.workerStepTime, w.StepTime.Seconds(), w.Name, rank)
		g(m.workerUp, 1, w.Name, rank, w.State)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
