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

// BenchmarkGemmBF16BlockSizes sweeps the cache blocks of the active
// bfloat16 kernel on the step's products (one thread):
//
//	go test -run '^$' -bench 'GemmBF16BlockSizes/lmhead_fwd' ./model/kernels/
func BenchmarkGemmBF16BlockSizes(b *testing.B) {
	base := activeBF16()
	if base == nil {
		b.Skip("GemmBF16 rounds into the float32 kernel on this CPU")
	}
	for _, s := range modelShapes {
		for _, mc := range []int{128, 256, 512} {
			for _, kc := range []int{256, 512, 1024} {
				for _, nc := range []int{8, 16, 32} {
					k := *base
					k.mc, k.kc, k.nc = mc, kc, nc
					b.Run(fmt.Sprintf("%s/mc=%d/kc=%d/nc=%d", s.name, mc, kc, nc), func(b *testing.B) {
						benchGemmBF16(b, &k, 1, s.transA, s.transB, s.m, s.n, s.k)
					})
				}
			}
		}
	}
}
