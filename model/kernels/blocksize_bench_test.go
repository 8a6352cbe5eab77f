package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkGemmBlockSizes sweeps the cache block sizes of the fastest kernel
// (NT, 1024³, one thread).
func BenchmarkGemmBlockSizes(b *testing.B) {
	base := *availableKernels()[0]
	for _, mc := range []int{base.mr * 6, base.mr * 12, base.mr * 24} {
		for _, kc := range []int{256, 384, 512} {
			for _, nc := range []int{256, 512, 768} {
				k := base
				k.mc, k.kc, k.nc = mc, kc, nc
				b.Run(fmt.Sprintf("mc=%d/kc=%d/nc=%d", mc, kc, nc), func(b *testing.B) {
					benchGemm(b, &k, 1, false, true, 1024, 1024, 1024)
				})
			}
		}
	}
}
