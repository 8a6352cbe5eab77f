//go:build amd64 && !noasm

package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkPackAlong times the transposing packer at panel widths 14 and
// 32 (6 and 16 for AVX2; ns per packed value): 16×16 transposes, gathers,
// 8×8 AVX2 transposes and the Go loop.
func BenchmarkPackAlong(b *testing.B) {
	defer func() { packMode = maxPackMode() }()
	for _, mode := range []string{"transpose", "gather", "avx2", "go"} {
		for _, w := range []int{14, 32} {
			b.Run(fmt.Sprintf("%s/w=%d", mode, w), func(b *testing.B) {
				packMode = map[string]int{"transpose": packAVX512, "gather": packAVX512, "avx2": packAVX2, "go": packGo}[mode]
				if packMode > maxPackMode() {
					b.Skip("CPU lacks the instructions")
				}
				if mode == "avx2" {
					w = map[int]int{14: 6, 32: 16}[w] // the AVX2 tile's panels
				}
				const kc, ld = 384, 1024
				rows := w
				srcRows := rows + 2 // the transposes read 16 rows
				if mode == "gather" {
					srcRows = rows // too few rows to read: gathers only
				}
				src := make([]float32, srcRows*ld)
				dst := make([]float32, kc*w)
				for b.Loop() {
					packAlong(dst, w, src[:(srcRows-1)*ld+kc], ld, rows, kc, 1)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(kc*w), "ns/value")
			})
		}
	}
}

// BenchmarkGemmAVX2 runs the AVX2/FMA path alone (6×16 tile, 8×8
// transposing packers), as on a CPU without AVX-512, at 1024³ on one thread.
func BenchmarkGemmAVX2(b *testing.B) {
	if maxPackMode() < packAVX2 {
		b.Skip("no AVX2/FMA")
	}
	defer func() { packMode = maxPackMode() }()
	packMode = packAVX2
	for _, s := range []struct {
		name           string
		transA, transB bool
	}{{"NT", false, true}, {"NN", false, false}, {"TN", true, false}} {
		b.Run(s.name, func(b *testing.B) {
			benchGemm(b, kernel6x16AVX2, 1, s.transA, s.transB, 1024, 1024, 1024)
		})
	}
}
