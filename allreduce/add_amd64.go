//go:build amd64 && !noasm

package allreduce

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernels; tests switch it off to cover the
// Go versions.
var useAVX2 = cpu.X86.HasAVX2

func add32(dst, src []float32) {
	if !useAVX2 || len(dst) == 0 {
		add32Go(dst, src)
		return
	}
	_ = src[len(dst)-1]
	add32AVX2(&dst[0], &src[0], len(dst))
}

func addScale32(dst, src []float32, scale float32) {
	if !useAVX2 || len(dst) == 0 {
		addScale32Go(dst, src, scale)
		return
	}
	_ = src[len(dst)-1]
	addScale32AVX2(&dst[0], &src[0], len(dst), scale)
}

// add32AVX2 is add32Go over n elements.
//
//go:noescape
func add32AVX2(dst, src *float32, n int)

// addScale32AVX2 is addScale32Go over n elements.
//
//go:noescape
func addScale32AVX2(dst, src *float32, n int, scale float32)
