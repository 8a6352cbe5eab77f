package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkMicroKernel runs each register block on data that stays in L1.
func BenchmarkMicroKernel(b *testing.B) {
	for _, kern := range availableKernels() {
		for _, k := range []int{128, 256} {
			b.Run(fmt.Sprintf("%s/k=%d", kern.name, k), func(b *testing.B) {
				a := make([]float32, k*kern.mr)
				bb := make([]float32, k*kern.nr)
				c := make([]float32, kern.mr*kern.nr)
				for b.Loop() {
					kern.fn(k, a, bb, c, kern.nr, 1)
				}
				b.ReportMetric(2*float64(kern.mr*kern.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}
