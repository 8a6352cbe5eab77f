package shard

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// refList builds the sequence list of docs/data.md naively from the
// token lists of shards already in name order.
func refList(shards [][]uint16, T int) [][2][]int32 {
	var list [][2][]int32
	for _, tok := range shards {
		for k := 0; k*T+T+1 <= len(tok); k++ {
			var x, y []int32
			for j := 0; j < T; j++ {
				x = append(x, int32(tok[k*T+j]))
				y = append(y, int32(tok[k*T+j+1]))
			}
			list = append(list, [2][]int32{x, y})
		}
	}
	return list
}

func TestSequenceLayout(t *testing.T) {
	tests := []struct {
		name    string
		shards  map[string][]uint16 // file name → tokens
		order   []string            // names in sorted order
		T       int
		wantSeq []int // S_f per shard (sorted order)
	}{
		{"exact fit", map[string][]uint16{"a.bin": seq(0, 10)}, []string{"a.bin"}, 3, []int{3}},
		{"leftover tokens dropped", map[string][]uint16{"a.bin": seq(0, 12)}, []string{"a.bin"}, 3, []int{3}},
		{"one sequence", map[string][]uint16{"a.bin": seq(0, 4)}, []string{"a.bin"}, 3, []int{1}},
		{"T=1", map[string][]uint16{"a.bin": seq(0, 5)}, []string{"a.bin"}, 1, []int{4}},
		{"multi shard sorted by name", map[string][]uint16{
			"train_000002.bin": seq(2000, 8),
			"train_000000.bin": seq(0, 10),
			"train_000001.bin": seq(1000, 7),
		}, []string{"train_000000.bin", "train_000001.bin", "train_000002.bin"}, 3, []int{3, 2, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Create in reverse sorted order so creation order cannot leak in.
			for i := len(tc.order) - 1; i >= 0; i-- {
				writeShard(t, dir, tc.order[i], tc.shards[tc.order[i]])
			}
			ds, err := OpenGlob(filepath.Join(dir, "*.bin"), MaxVocab, tc.T)
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			var sorted [][]uint16
			total, ntok := 0, int64(0)
			for i, name := range tc.order {
				sorted = append(sorted, tc.shards[name])
				total += tc.wantSeq[i]
				ntok += int64(len(tc.shards[name]))
				if got := ds.Shards()[i].Path(); filepath.Base(got) != name {
					t.Fatalf("shard %d is %s, want %s", i, got, name)
				}
			}
			if ds.NumSequences() != total || ds.NumTokens() != ntok || ds.ContextLength() != tc.T || ds.VocabSize() != MaxVocab {
				t.Fatalf("NumSequences %d (want %d) NumTokens %d (want %d)", ds.NumSequences(), total, ds.NumTokens(), ntok)
			}
			ref := refList(sorted, tc.T)
			if len(ref) != total {
				t.Fatalf("reference list has %d, want %d", len(ref), total)
			}
			x, y := make([]int32, tc.T), make([]int32, tc.T)
			// Three epochs: index i is list entry i mod N.
			for i := 0; i < 3*total; i++ {
				ds.Sequence(i, x, y)
				want := ref[i%total]
				if !slices.Equal(x, want[0]) || !slices.Equal(y, want[1]) {
					t.Fatalf("sequence %d: x %v y %v, want x %v y %v", i, x, y, want[0], want[1])
				}
				v := ds.View(i)
				if len(v) != tc.T+1 || int32(v[0]) != want[0][0] || int32(v[tc.T]) != want[1][tc.T-1] {
					t.Fatalf("View(%d) = %v", i, v)
				}
			}
		})
	}
}

func TestSequenceExplicit(t *testing.T) {
	// Spelled out once: shard a = 0..9, shard b = 100..106, T = 3.
	dir := t.TempDir()
	writeShard(t, dir, "b.bin", seq(100, 7))
	writeShard(t, dir, "a.bin", seq(0, 10))
	ds, err := OpenGlob(filepath.Join(dir, "*.bin"), 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	want := [][2][]int32{
		{{0, 1, 2}, {1, 2, 3}},
		{{3, 4, 5}, {4, 5, 6}},
		{{6, 7, 8}, {7, 8, 9}},
		{{100, 101, 102}, {101, 102, 103}},
		{{103, 104, 105}, {104, 105, 106}},
		{{0, 1, 2}, {1, 2, 3}},             // index 5 wraps to 0
		{{103, 104, 105}, {104, 105, 106}}, // 9 → 4
	}
	idx := []int{0, 1, 2, 3, 4, 5, 9}
	x, y := make([]int32, 3), make([]int32, 3)
	for n, i := range idx {
		ds.Sequence(i, x, y)
		if !slices.Equal(x, want[n][0]) || !slices.Equal(y, want[n][1]) {
			t.Errorf("sequence %d: x %v y %v, want %v", i, x, y, want[n])
		}
	}
}

func TestOpenGlobErrors(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "ok_0.bin", seq(0, 10))
	short := writeShard(t, dir, "short_0.bin", seq(0, 4))
	writeShard(t, dir, "short_1.bin", seq(0, 3))
	bad := writeBytes(t, dir, "mixed_1.bin", rawHeader(1, 1, 0, nil))
	writeShard(t, dir, "mixed_0.bin", seq(0, 10))
	tests := []struct {
		name    string
		pattern string
		T       int
		want    error
		inMsg   []string
	}{
		{"no match", filepath.Join(dir, "nothing_*.bin"), 3, ErrNoFiles, []string{"nothing_*.bin"}},
		{"bad pattern", filepath.Join(dir, "[.bin"), 3, filepath.ErrBadPattern, []string{"[.bin"}},
		{"shorter than T+1", filepath.Join(dir, "short_*.bin"), 3, ErrTooShort, []string{filepath.Join(dir, "short_1.bin"), "3 tokens", "needs 4"}},
		{"shorter than T+1 first", filepath.Join(dir, "short_0.bin"), 4, ErrTooShort, []string{short, "4 tokens", "needs 5"}},
		{"one bad shard", filepath.Join(dir, "mixed_*.bin"), 3, ErrBadMagic, []string{bad}},
		{"token range", filepath.Join(dir, "ok_*.bin"), 3, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vocab := MaxVocab
			if tc.want == nil {
				// Make "token range" fail through OpenGlob: vocab 5 < token 9.
				vocab, tc.want, tc.inMsg = 5, ErrTokenRange, []string{"position 5"}
			}
			ds, err := OpenGlob(tc.pattern, vocab, tc.T)
			if err == nil {
				ds.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, sub := range tc.inMsg {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			}
		})
	}
	if _, err := OpenFiles(nil, 100, 3); !errors.Is(err, ErrNoFiles) {
		t.Errorf("OpenFiles(nil): %v", err)
	}
	if _, err := OpenFiles([]string{filepath.Join(dir, "ok_0.bin")}, 100, 0); err == nil {
		t.Error("T=0 accepted")
	}
}
