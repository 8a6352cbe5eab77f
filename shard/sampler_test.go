package shard

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// testDataset builds a dataset of n sequences of context T over three
// shards; token values encode the position so sequences are distinct.
func testDataset(t testing.TB, T int, sizes ...int) *Dataset {
	t.Helper()
	dir := t.TempDir()
	base := 0
	for f, n := range sizes {
		tok := make([]uint16, n)
		for i := range tok {
			tok[i] = uint16((base + i) % MaxVocab)
		}
		base += n
		writeShard(t, dir, fmt.Sprintf("train_%06d.bin", f), tok)
	}
	ds, err := OpenGlob(filepath.Join(dir, "train_*.bin"), MaxVocab, T)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

func TestSamplerIndex(t *testing.T) {
	ds := testDataset(t, 4, 41, 20, 9) // S = 10, 4, 2 → N = 16
	const n = 16
	if ds.NumSequences() != n {
		t.Fatalf("N = %d", ds.NumSequences())
	}
	seqS, _ := NewSampler(ds, Sequential, 1)
	shufS, _ := NewSampler(ds, Shuffled, 1)
	other, _ := NewSampler(ds, Shuffled, 2)
	perm := make([]uint32, n)
	var orders [][]int
	for epoch := int64(0); epoch < 4; epoch++ {
		Permutation(perm, 1, uint64(epoch))
		var order []int
		seen := map[int]bool{}
		for j := int64(0); j < n; j++ {
			p := epoch*n + j
			if got := seqS.Index(p); got != int(j) {
				t.Fatalf("sequential Index(%d) = %d, want %d", p, got, j)
			}
			i := shufS.Index(p)
			if i != int(perm[j]) {
				t.Fatalf("shuffled Index(%d) = %d, want perm[%d] = %d", p, i, j, perm[j])
			}
			if seen[i] {
				t.Fatalf("epoch %d visits %d twice", epoch, i)
			}
			seen[i] = true
			order = append(order, i)
		}
		orders = append(orders, order)
	}
	if slices.Equal(orders[0], orders[1]) {
		t.Error("epochs 0 and 1 have the same order")
	}
	same := true
	for p := int64(0); p < n; p++ {
		same = same && other.Index(p) == shufS.Index(p)
	}
	if same {
		t.Error("seeds 1 and 2 give the same order")
	}
	// Random access out of order (epoch 3, then 0, then 2) agrees with the sweep.
	for _, p := range []int64{3*n + 5, 5, 2*n + 1, 3*n + 5} {
		if got, want := shufS.Index(p), orders[p/n][p%n]; got != want {
			t.Errorf("Index(%d) = %d, want %d", p, got, want)
		}
	}
}

func TestRankSlicing(t *testing.T) {
	for _, G := range []int{1, 6, 8, 12, 32} {
		if _, _, err := RankRange(0, G, 0, G+1); err == nil {
			t.Errorf("G %d W %d: no error", G, G+1)
		}
		for W := 1; W <= G; W++ {
			for r := range W {
				_, n, err := RankRange(0, G, r, W)
				if err != nil || n < G/W || n > G/W+1 {
					t.Fatalf("G %d W %d rank %d: %d sequences, %v; want %d or %d", G, W, r, n, err, G/W, G/W+1)
				}
			}
			for _, mb := range []int{1, 3, 8, 100} {
				for _, step := range []int64{0, 5} {
					want := StepPosition(step, G)
					total := 0
					for r := range W {
						nm, err := NumMicro(G, r, W, mb)
						if err != nil {
							t.Fatal(err)
						}
						for m := range nm {
							p, n, err := MicroRange(step, G, r, W, m, mb)
							if err != nil {
								t.Fatalf("G %d W %d mb %d r %d m %d: %v", G, W, mb, r, m, err)
							}
							if p != want || n < 1 || n > mb {
								t.Fatalf("G %d W %d mb %d r %d m %d: (%d, %d), want start %d", G, W, mb, r, m, p, n, want)
							}
							want += int64(n)
							total += n
						}
					}
					if total != G || want != StepPosition(step+1, G) {
						t.Fatalf("G %d W %d mb %d: ranks cover %d sequences, want %d", G, W, mb, total, G)
					}
				}
			}
		}
	}
}

func TestRangeErrors(t *testing.T) {
	tests := []struct {
		name                             string
		step                             int64
		G, rank, world, micro, microSize int
	}{
		{"world above G", 0, 3, 0, 4, 0, 1},
		{"G zero", 0, 0, 0, 1, 0, 1},
		{"world zero", 0, 8, 0, 0, 0, 1},
		{"rank negative", 0, 8, -1, 2, 0, 1},
		{"rank too big", 0, 8, 2, 2, 0, 1},
		{"micro too big", 0, 8, 0, 2, 4, 1},
		{"micro negative", 0, 8, 0, 2, -1, 1},
		{"micro size zero", 0, 8, 0, 2, 0, 0},
		{"negative step", -1, 8, 0, 2, 0, 1},
	}
	for _, tc := range tests {
		if _, _, err := MicroRange(tc.step, tc.G, tc.rank, tc.world, tc.micro, tc.microSize); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// globalBatch assembles step s as seen by W ranks with micro-batch mb.
func globalBatch(t *testing.T, s *Sampler, step int64, G, W, mb int) []int32 {
	t.Helper()
	T := s.Dataset().ContextLength()
	x, y := make([]int32, mb*T), make([]int32, mb*T)
	var out []int32
	for r := range W {
		nm, err := NumMicro(G, r, W, mb)
		if err != nil {
			t.Fatal(err)
		}
		for m := range nm {
			n, err := s.FillMicro(x, y, step, G, r, W, m, mb)
			if err != nil {
				t.Fatal(err)
			}
			for k := range n {
				row := x[k*T : (k+1)*T]
				// y is x shifted by one within the source tokens.
				if !slices.Equal(row[1:], y[k*T:(k+1)*T-1]) {
					t.Fatalf("row %d: y is not x shifted", k)
				}
			}
			out = append(out, x[:n*T]...)
			out = append(out, y[n*T-T:n*T]...) // last y row too
		}
	}
	return out
}

func TestFillMatchesDataset(t *testing.T) {
	ds := testDataset(t, 8, 100, 57, 300)
	for _, order := range []Order{Sequential, Shuffled} {
		s, err := NewSampler(ds, order, 99)
		if err != nil {
			t.Fatal(err)
		}
		const n = 90 // crosses two epoch boundaries (N = 12+7+37 = 56)
		T := 8
		x, y := make([]int32, n*T), make([]int32, n*T)
		p0 := int64(40)
		s.Fill(x, y, p0, n)
		xs, ys := make([]int32, T), make([]int32, T)
		for k := range n {
			ds.Sequence(s.Index(p0+int64(k)), xs, ys)
			if !slices.Equal(xs, x[k*T:(k+1)*T]) || !slices.Equal(ys, y[k*T:(k+1)*T]) {
				t.Fatalf("%v: row %d differs from Sequence(Index(%d))", order, k, p0+int64(k))
			}
		}
	}
}

// TestWorldIndependence: a step's batch is the same sequences in the same
// order whatever W and the micro-batch size.
func TestWorldIndependence(t *testing.T) {
	ds := testDataset(t, 4, 200, 150)
	s, _ := NewSampler(ds, Shuffled, 5)
	const G = 24
	for step := int64(0); step < 12; step++ { // N = 49+37 = 86: crosses epochs
		want := fmt.Sprint(globalBatchRows(t, s, step, G, 1, G))
		for _, wm := range [][2]int{{2, 4}, {3, 8}, {4, 5}, {8, 3}, {24, 1}, {6, 100}, {5, 2}, {7, 3}, {23, 1}} {
			got := fmt.Sprint(globalBatchRows(t, s, step, G, wm[0], wm[1]))
			if got != want {
				t.Fatalf("step %d W %d mb %d: batch differs from W 1", step, wm[0], wm[1])
			}
		}
	}
}

// globalBatchRows returns the x rows of step s over all ranks and micro-batches.
func globalBatchRows(t *testing.T, s *Sampler, step int64, G, W, mb int) [][]int32 {
	t.Helper()
	T := s.Dataset().ContextLength()
	x, y := make([]int32, mb*T), make([]int32, mb*T)
	var rows [][]int32
	for r := range W {
		nm, err := NumMicro(G, r, W, mb)
		if err != nil {
			t.Fatal(err)
		}
		for m := range nm {
			n, err := s.FillMicro(x, y, step, G, r, W, m, mb)
			if err != nil {
				t.Fatal(err)
			}
			for k := range n {
				rows = append(rows, slices.Clone(x[k*T:(k+1)*T]))
			}
		}
	}
	return rows
}

// TestResume: a run interrupted after step k and resumed from the stored
// data position (new Dataset, new Sampler) sees exactly the batches of the
// uninterrupted run.
func TestResume(t *testing.T) {
	const G, W, mb, steps, T = 16, 2, 3, 20, 4
	dir := t.TempDir()
	writeShard(t, dir, "train_000000.bin", seq(0, 101))
	writeShard(t, dir, "train_000001.bin", seq(500, 77))
	open := func() *Sampler {
		ds, err := OpenGlob(filepath.Join(dir, "train_*.bin"), 1000, T)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ds.Close() })
		s, err := NewSampler(ds, Shuffled, 1337)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	full := open()
	var want []string
	for step := int64(0); step < steps; step++ {
		want = append(want, fmt.Sprint(globalBatch(t, full, step, G, W, mb)))
	}
	for _, k := range []int64{0, 1, 3, 7, 12, 19} { // checkpoint after step k
		p := StepPosition(k+1, G) // what the checkpoint stores
		resumed := open()
		for step := p / G; step < steps; step++ {
			if got := fmt.Sprint(globalBatch(t, resumed, step, G, W, mb)); got != want[step] {
				t.Fatalf("resumed after step %d (p %d): step %d differs", k, p, step)
			}
		}
	}
}

func TestFillMicroBufferTooSmall(t *testing.T) {
	ds := testDataset(t, 4, 100)
	s, _ := NewSampler(ds, Sequential, 0)
	x, y := make([]int32, 7), make([]int32, 8)
	if _, err := s.FillMicro(x, y, 0, 4, 0, 2, 0, 2); err == nil {
		t.Fatal("short x accepted")
	}
	if _, err := NewSampler(ds, Order(7), 0); err == nil {
		t.Fatal("unknown order accepted")
	}
}

func TestFillNoAlloc(t *testing.T) {
	ds := testDataset(t, 16, 1000, 1000)
	for _, order := range []Order{Sequential, Shuffled} {
		s, _ := NewSampler(ds, order, 3)
		x, y := make([]int32, 8*16), make([]int32, 8*16)
		step := int64(0)
		fill := func() {
			if _, err := s.FillMicro(x, y, step%40, 32, 1, 2, 1, 8); err != nil {
				t.Fatal(err)
			}
			step++
		}
		for range 100 { // warm up both permutation slots
			fill()
		}
		if a := testing.AllocsPerRun(200, fill); a != 0 {
			t.Errorf("%v: %v allocations per FillMicro", order, a)
		}
	}
}

func TestSamplerConcurrent(t *testing.T) {
	ds := testDataset(t, 4, 300)
	s, _ := NewSampler(ds, Shuffled, 11)
	ref, _ := NewSampler(ds, Shuffled, 11)
	const G = 8
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Go(func() {
			x, y := make([]int32, 2*4), make([]int32, 2*4)
			rx, ry := make([]int32, 2*4), make([]int32, 2*4)
			for step := int64(r); step < 200; step += 3 { // epochs interleave across goroutines
				if _, err := s.FillMicro(x, y, step, G, r, 4, 0, 2); err != nil {
					errs <- err
					return
				}
				ref.Fill(rx, ry, StepPosition(step, G)+int64(r*2), 2)
				if !slices.Equal(x, rx) || !slices.Equal(y, ry) {
					errs <- fmt.Errorf("rank %d step %d differs", r, step)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
