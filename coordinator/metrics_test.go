package coordinator

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/runmetrics"
)

func TestMetricsCollector(t *testing.T) {
	j := job.Default()
	c, err := New(Config{Etcd: &clientv3.Client{}, Job: &j, RunDir: t.TempDir(), Advertise: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	c.hub.set(Status{Job: "job", Phase: PhaseRunning, Step: 7, MaxSteps: 2000, Loss: 3.5, LastCheckpoint: 5,
		Workers: []WorkerView{{Name: "a", Rank: 0, State: StateTraining, Step: 7}, {Name: "b", Rank: -1, State: StateSpare}}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c))
	// The runtime counts what the machine records, and times checkpoints.
	for _, kind := range []string{"generation", "joined", "joined", "lost", "stalled", "left", "checkpoint", "checkpoint_failed", "healed"} {
		c.counters.event(&runmetrics.Event{Event: kind})
	}
	c.counters.event(&runmetrics.Event{Event: "recovered", Seconds: 1.5})
	t0 := time.Now()
	c.counters.uploadBegan(5, t0)
	c.counters.checkpointEnded(5, true, t0.Add(2*time.Second))
	c.counters.uploadBegan(6, t0)
	c.counters.checkpointEnded(6, false, t0.Add(time.Second)) // failed: not a checkpoint's duration
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"ringtrain_step{}":                                       7,
		"ringtrain_max_steps{}":                                  2000,
		"ringtrain_loss{}":                                       3.5,
		"ringtrain_last_checkpoint_step{}":                       5,
		"ringtrain_phase{phase=running}":                         1,
		"ringtrain_phase{phase=waiting}":                         0,
		"ringtrain_worker_step{rank=0,worker=a}":                 7,
		"ringtrain_worker_state{rank=-1,state=spare,worker=b}":   1,
		"ringtrain_worker_state{rank=0,state=training,worker=a}": 1,
		"ringtrain_generations_total{}":                          1,
		"ringtrain_workers_joined_total{}":                       2,
		"ringtrain_workers_lost_total{}":                         2,
		"ringtrain_workers_left_total{}":                         1,
		"ringtrain_checkpoints_committed_total{}":                1,
		"ringtrain_checkpoints_failed_total{}":                   1,
		"ringtrain_checkpoint_seconds_count{}":                   1,
		"ringtrain_checkpoint_seconds_sum{}":                     2,
		"ringtrain_recovery_seconds_sum{}":                       1.5,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	// Not known yet: no val loss before an evaluation, no lr before a
	// reported step, no throughput or ETA before a timed one, no
	// generation while none trains; no step time of a spare.
	for _, key := range []string{"ringtrain_val_loss{}", "ringtrain_learning_rate{}", "ringtrain_grad_norm{}", "ringtrain_tokens_per_second{}",
		"ringtrain_eta_seconds{}", "ringtrain_generation{}", "ringtrain_worker_step_seconds{rank=-1,worker=b}"} {
		if v, ok := got[key]; ok {
			t.Errorf("%s = %v before it is known", key, v)
		}
	}
	c.hub.set(Status{Job: "job", Phase: PhaseRunning, Step: 9, MaxSteps: 2000, Loss: 3.1, HasVal: true, ValLoss: 3.3, Reported: true, LR: 1e-3,
		TokensPerS: 100, Generation: 2, World: 1, ETA: time.Minute, LastCheckpoint: 5})
	got = gather(t, reg)
	for key, want := range map[string]float64{"ringtrain_val_loss{}": 3.3, "ringtrain_learning_rate{}": 1e-3, "ringtrain_tokens_per_second{}": 100,
		"ringtrain_eta_seconds{}": 60, "ringtrain_generation{}": 2} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

// gather returns every sample of reg as name{sorted labels} → value
// (histograms as _count and _sum).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				h := mf.GetName() + "_%s{" + strings.Join(labels, ",") + "}"
				got[fmt.Sprintf(h, "count")] = float64(m.GetHistogram().GetSampleCount())
				got[fmt.Sprintf(h, "sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return got
}
