package coordinator

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ringtrain/ringtrain/job"
)

func TestCollector(t *testing.T) {
	j := job.Default()
	c, err := New(Config{Etcd: &clientv3.Client{}, Job: &j, RunDir: t.TempDir(), Advertise: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	c.hub.set(Status{Job: "job", Phase: PhaseRunning, Step: 7, MaxSteps: 2000, Loss: 3.5, LastCheckpoint: 5,
		Workers: []WorkerView{{Name: "a", Rank: 0, State: StateTraining, Step: 7}, {Name: "b", Rank: -1, State: StateSpare}}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c))
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
			if g := m.GetGauge(); g != nil {
				got[key] = g.GetValue()
			} else if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
		}
	}
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
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
