//go:build amd64 && !noasm

package allreduce

import "testing"

// TestBF16KernelsAVX2 covers the AVX2 kernels on CPUs with AVX512_BF16
// (which otherwise take the AVX-512 ones) and the Go loops.
func TestBF16KernelsAVX2(t *testing.T) {
	defer func(a, b bool) { useAVX512BF16, useAVX2 = a, b }(useAVX512BF16, useAVX2)
	useAVX512BF16 = false
	t.Run("avx2", TestBF16Kernels)
	useAVX2 = false
	t.Run("go", TestBF16Kernels)
}
