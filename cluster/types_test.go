package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/job"
)

// The job travels to the workers in the job record, as JSON: every field
// must survive the trip.
func TestJobRecordJSONRoundTrip(t *testing.T) {
	for _, src := range []string{
		`{name: a, model: {preset: small}, data: {train: "/d/train_*.bin", val: "/d/val_*.bin", order: shuffled}, train: {seed: 18446744073709551615}, workers: {stall_timeout: 90s}}`,
		`{name: b, model: {vocab_size: 64, context_length: 16, d_model: 32, num_layers: 2, num_heads: 4, d_ff: 64, rope_theta: 500000}, init: "/x.safetensors", data: {train: "/t_*.bin"}, eval: {every: 0}, checkpoint: {every: 0, keep: 1}, workers: {min: 2, max: 2}, train: {global_batch: 4, micro_batch: 2, grad_clip: 0}}`,
	} {
		j, err := job.Parse([]byte(src), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		rec := JobRecord{Run: "r1", Job: j, Manifest: Manifest{Train: []ShardInfo{{"t.bin", 10, "ab"}}, Digest: "d"}}
		b, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		var back JobRecord
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&rec, &back) {
			t.Errorf("round trip changed the job:\n%+v\n%+v", *rec.Job, *back.Job)
		}
	}
}

func TestGenerationRanks(t *testing.T) {
	g := Generation{ID: 3, Members: []RankedMember{{Name: "a", Address: "a:1", Incarnation: 5, Rank: 0}, {Name: "b", Address: "b:1", Incarnation: 6, Rank: 1}}}
	if g.Rank("b", 6) != 1 || g.Rank("b", 7) != -1 || g.Rank("z", 5) != -1 || !reflect.DeepEqual(g.Addresses(), []string{"a:1", "b:1"}) {
		t.Errorf("ranks/addresses of %+v", g.Members)
	}
}

func TestVersionOrder(t *testing.T) {
	vs := []Version{{0, 0}, {3, 9}, {4, 1}, {4, 2}, {5, 0}}
	for i := range vs {
		for j := range vs {
			if vs[i].Less(vs[j]) != (i < j) {
				t.Errorf("%v < %v = %v", vs[i], vs[j], vs[i].Less(vs[j]))
			}
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"w0": true, "host-7071": true, "": false, "a/b": false, "a b": false, strings.Repeat("x", 201): false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

// A copy of the data that differs in one shard is refused naming it; the
// same files elsewhere pass.
func TestManifest(t *testing.T) {
	write := func(dir string, files map[string]string) {
		for n, body := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk := func(dir string) *job.Job {
		return &job.Job{Data: job.Data{Train: filepath.Join(dir, "train_*.bin"), Val: filepath.Join(dir, "val_*.bin")}}
	}
	a, b := t.TempDir(), t.TempDir()
	files := map[string]string{"train_000000.bin": "aaaa", "train_000001.bin": "bbbb", "val_000000.bin": "cc"}
	write(a, files)
	write(b, files)
	m, err := BuildManifest(mk(a))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Train) != 2 || len(m.Val) != 1 || m.Train[1].Name != "train_000001.bin" || m.Train[1].Size != 4 {
		t.Fatalf("manifest %+v", m)
	}
	if err := m.Check(mk(b)); err != nil {
		t.Fatalf("same data elsewhere: %v", err)
	}
	write(b, map[string]string{"train_000001.bin": "bbbX"})
	if err := m.Check(mk(b)); err == nil || !strings.Contains(err.Error(), "train_000001.bin") || !strings.Contains(err.Error(), "data.train") {
		t.Fatalf("changed shard: %v, want an error naming train_000001.bin", err)
	}
	os.Remove(filepath.Join(b, "val_000000.bin"))
	write(b, map[string]string{"train_000001.bin": "bbbb"})
	if err := m.Check(mk(b)); err == nil || !strings.Contains(err.Error(), "data.val") {
		t.Fatalf("missing val: %v", err)
	}
}
