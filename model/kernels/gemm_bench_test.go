package kernels

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// BenchmarkGemm measures the three training shapes at n×n×n:
//
//	go test -run '^$' -bench 'Gemm/' -count 5 ./model/kernels/
func BenchmarkGemm(b *testing.B) {
	shapes := []struct {
		name           string
		transA, transB bool
	}{{"NT", false, true}, {"NN", false, false}, {"TN", true, false}}
	for _, n := range []int{256, 512, 1024} {
		for _, s := range shapes {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/n=%d/threads=%d", s.name, n, threads), func(b *testing.B) {
					benchGemm(b, activeKernel, threads, s.transA, s.transB, n, n, n)
				})
			}
		}
	}
}

// BenchmarkGemmKernels compares the micro-kernels on one thread.
func BenchmarkGemmKernels(b *testing.B) {
	for _, kern := range availableKernels() {
		b.Run(kern.name, func(b *testing.B) {
			benchGemm(b, kern, 1, false, true, 1024, 1024, 1024)
		})
	}
}

// modelShapes are the products of one cs336-17m step (2048 tokens).
var modelShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"qkv_fwd", false, true, 2048, 1536, 512},
	{"ffn_up_fwd", false, true, 2048, 2688, 512},
	{"ffn_down_dx", false, false, 2048, 512, 1344},
	{"ffn_up_dw", true, false, 2688, 512, 2048},
	{"lmhead_fwd", false, true, 2048, 10000, 512},
	{"lmhead_dx", false, false, 2048, 512, 10000},
	{"lmhead_dw", true, false, 10000, 512, 2048},
	{"attn_head_scores", false, true, 256, 256, 32},
}

// BenchmarkGemmModel runs the products of one cs336-17m step (2048 tokens).
func BenchmarkGemmModel(b *testing.B) {
	for _, s := range modelShapes {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				benchGemm(b, activeKernel, threads, s.transA, s.transB, s.m, s.n, s.k)
			})
		}
	}
}

func benchGemm(b *testing.B, kern *microKernel, threads int, transA, transB bool, m, n, k int) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32() - 0.5
		}
		return s
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	g := &gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: fill(m * k), lda: lda, b: fill(k * n), ldb: ldb, c: fill(m * n), ldc: n}
	gemmWith(kern, threads, g)
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for b.Loop() {
		gemmWith(kern, threads, g)
	}
	reportFlops(b, 2*float64(m)*float64(n)*float64(k), cpu0)
}

// reportFlops reports GFLOPS by wall time and GFLOPS per busy core
// (cpu-GFLOPS: by the process's CPU time), which the other processes of a
// shared machine disturb less.
func reportFlops(b *testing.B, flopsPerOp float64, cpu0 float64) {
	flops := flopsPerOp * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(flops/cpu/1e9, "cpu-GFLOPS")
	}
}

// cpuSeconds is the user+system CPU time of the process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkGemmBF16 measures GemmBF16 (the path this CPU takes) on the
// three training shapes at n×n×n:
//
//	go test -run '^$' -bench 'GemmBF16/' -count 5 ./model/kernels/
func BenchmarkGemmBF16(b *testing.B) {
	b.Logf("GemmBF16 path: %s", KernelName(BF16))
	shapes := []struct {
		name           string
		transA, transB bool
	}{{"NT", false, true}, {"NN", false, false}, {"TN", true, false}}
	for _, n := range []int{256, 512, 1024} {
		for _, s := range shapes {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/n=%d/threads=%d", s.name, n, threads), func(b *testing.B) {
					benchGemmBF16(b, nil, threads, s.transA, s.transB, n, n, n)
				})
			}
		}
	}
}

// BenchmarkGemmBF16Paths compares the bfloat16 paths on one thread at 1024³:
// the bf16 kernels and the fp32 emulation.
func BenchmarkGemmBF16Paths(b *testing.B) {
	for _, kern := range availableBF16Kernels() {
		b.Run(kern.name, func(b *testing.B) { benchGemmBF16(b, kern, 1, false, true, 1024, 1024, 1024) })
	}
	b.Run("emulated-"+activeKernel.name, func(b *testing.B) {
		benchGemmBF16(b, nil, -1, false, true, 1024, 1024, 1024)
	})
}

// BenchmarkGemmBF16Model runs GemmBF16 on the products of one cs336-17m step.
func BenchmarkGemmBF16Model(b *testing.B) {
	for _, s := range modelShapes {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				benchGemmBF16(b, nil, threads, s.transA, s.transB, s.m, s.n, s.k)
			})
		}
	}
}

// benchGemmBF16 times GemmBF16 with kern (nil: the active path), or the
// fp32 emulation on one thread when threads < 0.
func benchGemmBF16(b *testing.B, kern *bf16Kernel, threads int, transA, transB bool, m, n, k int) {
	rng := rand.New(rand.NewPCG(1, 2))
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	g := gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: randSlice(rng, m*k, 1), lda: lda, b: randSlice(rng, k*n, 1), ldb: ldb, c: make([]float32, m*n), ldc: n}
	run := func() {
		a := g
		switch {
		case threads < 0:
			a.round = true
			gemmWith(activeKernel, 1, &a)
		case kern != nil:
			gemmBF16With(kern, threads, &a)
		case activeBF16() != nil:
			gemmBF16With(activeBF16(), threads, &a)
		default:
			a.round = true
			gemmWith(activeKernel, threads, &a)
		}
	}
	run()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for b.Loop() {
		run()
	}
	reportFlops(b, 2*float64(m)*float64(n)*float64(k), cpu0)
}

// BenchmarkPackPanelsBF16 packs the B panels of a backward product (B =
// x, 2048×512, k down the columns) from memory (16 matrices in turn, more
// than the L3), all panels in one call against a panel per call:
//
//	go test -run '^$' -bench PackPanelsBF16 ./model/kernels/
func BenchmarkPackPanelsBF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 2048, 512
	srcs := make([][]float32, 16)
	for i := range srcs {
		srcs[i] = randSlice(rng, rows*cols, 1)
	}
	ks, np := ceilDiv(rows, bfStep), ceilDiv(cols, bfCols)
	stride := ks * bfBlock
	dst := make([]uint16, np*stride)
	for _, perPanel := range []bool{false, true} {
		b.Run(fmt.Sprintf("per-panel=%v", perPanel), func(b *testing.B) {
			i := 0
			for b.Loop() {
				g := gemmArgs{k: rows, n: cols, b: srcs[i%len(srcs)], ldb: cols, alpha: 1}
				i++
				if !perPanel {
					packPanelsBF16(dst, stride, &g, 0, np, ks)
					continue
				}
				for q := range np {
					packPanelsBF16(dst[q*stride:], stride, &g, q, q+1, ks)
				}
			}
			b.ReportMetric(float64(b.N)*rows*cols/b.Elapsed().Seconds()/1e9, "Gvalues/s")
		})
	}
}
