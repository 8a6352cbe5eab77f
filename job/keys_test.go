package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const base = "data: {train: a}\neval: {every: 0}\n"

// TestTypeErrorsNameTheKey: a value of the wrong type is one error naming
// the dotted key, quoting the value and saying what is wanted.
func TestTypeErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"train: {max_steps: lots}", `line 3: train.max_steps: "lots" is not an integer`},
		{"train:\n  max_steps: 1.5", `line 4: train.max_steps: "1.5" is not an integer`},
		{"train: {lr: fast}", `train.lr: "fast" is not a number`},
		{"train: {seed: -1}", `train.seed: "-1" is not a non-negative integer`},
		{"train: [1, 2]", "train: a list is not a mapping of keys"},
		{"workers: {stall_timeout: soon}", `workers.stall_timeout: "soon" is not a duration (like 60s or 2m)`},
		{"workers: {stall_timeout: 30}", `workers.stall_timeout: "30" is not a duration`},
		{"model: {d_model: {x: 1}}", "model.d_model: a mapping is not an integer"},
		{"name: [a]", "name: a list is not a string"},
		{"checkpoint: {every: 99999999999999999999}", "checkpoint.every: \"99999999999999999999\" is not an integer"},
		{"model: {preset: small, head_count: 3}", "line 3: unknown key model.head_count (model has context_length, d_ff, d_model, num_heads, num_layers, preset, rope_theta, vocab_size)"},
	} {
		_, err := Parse([]byte(base+tc.body), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.body, err, tc.want)
		}
	}
	if _, err := Parse([]byte("- a\n- b"), "list.yaml"); err == nil || !strings.Contains(err.Error(), "the job file: a list is not a mapping of keys") {
		t.Errorf("a list as the job: %v", err)
	}
	j, err := Parse([]byte(base+"train: {max_steps: 2e3, warmup: ~}\nname: 123"), "ok.yaml")
	if err != nil || j.Train.MaxSteps != 2000 || j.Train.Warmup != Default().Train.Warmup || j.Name != "123" {
		t.Errorf("whole float, null and a number as a name: %+v, %v", j, err)
	}
}

func TestSet(t *testing.T) {
	file := "# the demo\nname: x # keep me\ndata: {train: a, val: b}\ntrain: {lr: 1.0e-3, max_steps: 10, warmup: 2}\n"
	out, err := Set([]byte(file), []string{"train.lr=3e-4", "model.preset=cs336-17m", "model.d_ff=1000", "data.val=", "eval.every=0", "name=y=z"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse(out, "set")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if j.Train.LR != 3e-4 || j.Train.MaxSteps != 10 || j.Model.Preset != "cs336-17m" || j.Model.DFF != 1000 ||
		j.Data.Val != "" || j.Data.Train != "a" || j.Eval.Every != 0 || j.Name != "y=z" {
		t.Errorf("job after --set: %+v", j)
	}
	if !strings.Contains(string(out), "keep me") {
		t.Errorf("comments lost:\n%s", out)
	}
	for _, tc := range []struct{ set, want string }{
		{"train.max_steps=lots", `--set train.max_steps=lots: train.max_steps: "lots" is not an integer`},
		{"train.lrr=1", "--set train.lrr=1: unknown key train.lrr (train has "},
		{"train.lr.x=1", "--set train.lr.x=1: unknown key train.lr.x (train.lr is a number)"},
		{"lr", `--set "lr": want key=value`},
		{"=3", `--set "=3": want key=value`},
		{"train={lr: x}", `--set train={lr: x}: train.lr: "x" is not a number`},
	} {
		_, err := Set([]byte(file), []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: error %v, want one containing %q", tc.set, err, tc.want)
		}
	}
	// A valid override can still make the job invalid; Parse says why.
	out, _ = Set([]byte(file), []string{"train.warmup=20"})
	if _, err := Parse(out, "set"); err == nil || !strings.Contains(err.Error(), "train.warmup: 20 is longer than train.max_steps 10") {
		t.Errorf("warmup > max_steps: %v", err)
	}
	// An empty file takes overrides too.
	out, err = Set(nil, []string{"data.train=x", "eval.every=0"})
	if j, perr := Parse(out, "empty"); err != nil || perr != nil || j.Data.Train != "x" {
		t.Errorf("empty file: %v %v", err, perr)
	}
}

func TestStepsOverrides(t *testing.T) {
	j, err := Parse([]byte(base+"train: {max_steps: 300, warmup: 20}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		sets []string
		want string
	}{
		{2, nil, "train.max_steps=2 train.warmup=0"},
		{30, nil, "train.max_steps=30 train.warmup=2"},
		{600, nil, "train.max_steps=600 train.warmup=40"},
		{30, []string{"train.warmup=5"}, "train.max_steps=30"},
	} {
		if got := strings.Join(j.StepsOverrides(tc.n, tc.sets), " "); got != tc.want {
			t.Errorf("StepsOverrides(%d, %v) = %s, want %s", tc.n, tc.sets, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	j, err := Parse([]byte(base+"train: {global_batch: 32, micro_batch: 8}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	for w, want := range map[int]Split{1: {1, 32, 32, 4}, 2: {2, 16, 16, 2}, 3: {3, 10, 11, 2}, 4: {4, 8, 8, 1}, 32: {32, 1, 1, 1}} {
		if got := j.Split(w); got != want {
			t.Errorf("Split(%d) = %+v, want %+v", w, got, want)
		}
	}
}

// TestDocsListEveryKey: docs/job.md documents every key of the job file.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/job.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/job.md does not document `%s`", k)
		}
	}
}

// TestAliasBomb: a billion-laughs job file is an error, quickly.
func TestAliasBomb(t *testing.T) {
	bomb := "a: &a {preset: small}\n"
	prev := "a"
	for i := range 30 {
		name := string(rune('b'+i%24)) + strings.Repeat("x", i/24)
		bomb += name + ": &" + name + " [*" + prev + ", *" + prev + "]\n"
		prev = name
	}
	_, err := Parse([]byte(bomb), "bomb.yaml")
	if err == nil {
		t.Fatal("alias bomb accepted")
	}
}

// FuzzParse: any job file parses into a job that passes its own checks,
// or gives an error naming the file; no panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte(base + "train: {max_steps: lots}"))
	f.Add([]byte("a: &a [1]\nb: [*a, *a]"))
	f.Add([]byte(`{"model": {"vocab_size": 256}, "data": {"train": "x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := Parse(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		if err := j.check(); err != nil {
			t.Fatalf("parsed job fails its checks: %v", err)
		}
	})
}

// TestExamplesParse: every example job file is a valid job.
func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}

// TestSetThroughAlias: an override below an alias changes only that key.
func TestSetThroughAlias(t *testing.T) {
	file := base + "train: &t {lr: 1.0e-3, max_steps: 10, warmup: 2}\n"
	out, err := Set([]byte(file), []string{"train.lr=5e-4"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse(out, "alias")
	if err != nil || j.Train.LR != 5e-4 || j.Train.MaxSteps != 10 {
		t.Fatalf("%v %+v\n%s", err, j, out)
	}
}
