package runmetrics

import (
	"strings"
	"testing"
	"time"
)

func TestReadFixture(t *testing.T) {
	l, err := ReadFile("testdata/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Steps) != 120 || l.Steps[0].Step != 0 || l.Steps[119].Step != 119 {
		t.Fatalf("%d steps, want 0..119 (the truncated step 120 left out)", len(l.Steps))
	}
	var val int
	for _, s := range l.Steps {
		if s.ValLoss != nil {
			val++
		}
	}
	if val != 4 {
		t.Errorf("%d eval steps, want 4", val)
	}
	if len(l.Events) != 5 || l.Events[1].Event != EventJoined || l.Events[1].Worker != "w3" || l.Events[4].Seconds != 0.4 {
		t.Errorf("events %+v", l.Events)
	}
	s := l.Steps[40]
	if s.WorldSize != 3 || s.Tokens != 3072 || !s.Time.Equal(time.Date(2025, 12, 1, 9, 8, 0, 0, time.UTC)) {
		t.Errorf("step 40: %+v", s)
	}
	want := []Change{{0, 1, 2}, {40, 2, 3}, {90, 0, 2}}
	got := l.Generations()
	if len(got) != len(want) {
		t.Fatalf("generations %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("generation change %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParse(t *testing.T) {
	const step = `{"step":%d,"loss":2.5,"lr":0.001,"grad_norm":1,"tokens":10,"tokens_per_s":5,"world_size":1,"time":"2026-01-02T03:04:05Z"}`
	line := func(s string) string { return strings.Replace(step, "%d", s, 1) }
	for _, tc := range []struct {
		name, in string
		steps    int
		err      string
	}{
		{"empty", "", 0, ""},
		{"blank lines", "\n\n" + line("0") + "\n\n", 1, ""},
		{"last line without newline", line("0") + "\n" + line("1"), 2, ""},
		{"truncated last line", line("0") + "\n" + `{"step":1,"lo`, 1, ""},
		{"resumed run rewrote steps", line("0") + "\n" + line("1") + "\n" + line("1") + "\n", 2, ""},
		{"out of order", line("3") + "\n" + line("1") + "\n", 2, ""},
		{"garbage in the middle", line("0") + "\nnot json\n" + line("1") + "\n", 0, "m.jsonl:2: not a JSON metrics line"},
		{"garbage last line with newline", line("0") + "\n{\"step\":1,\"lo\n", 0, "m.jsonl:2: not a JSON metrics line"},
		{"no step", `{"loss":1}` + "\n", 0, `m.jsonl:1: no "step"`},
		{"neither", `{"step":1,"lr":0.1}` + "\n", 0, `m.jsonl:1: neither "loss"`},
		{"bad time", `{"step":1,"loss":1,"time":"yesterday"}` + "\n", 0, "m.jsonl:1: step line: parsing time"},
		{"empty event", `{"step":1,"event":""}` + "\n", 0, `m.jsonl:1: empty "event"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse(strings.NewReader(tc.in), "m.jsonl")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Steps) != tc.steps {
				t.Fatalf("%d steps, want %d", len(l.Steps), tc.steps)
			}
			for i := 1; i < len(l.Steps); i++ {
				if l.Steps[i].Step <= l.Steps[i-1].Step {
					t.Fatalf("steps not sorted: %d after %d", l.Steps[i].Step, l.Steps[i-1].Step)
				}
			}
		})
	}
}
