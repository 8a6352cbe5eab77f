//go:build amd64 && !noasm

package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkPackAlong times the transposing packer at panel widths 14 and
// 32 (ns per packed value): 16×16 transposes, gathers, and the Go loop.
func BenchmarkPackAlong(b *testing.B) {
	defer func(g bool) { useGather = g }(useGather)
	for _, mode := range []string{"transpose", "gather", "go"} {
		for _, w := range []int{14, 32} {
			b.Run(fmt.Sprintf("%s/w=%d", mode, w), func(b *testing.B) {
				useGather = mode != "go"
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
