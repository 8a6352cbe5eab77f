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

// useAVX512BF16 selects the AVX512_BF16 conversions of WireBF16.
var useAVX512BF16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512BF16

func encode16(dst []uint16, src []float32) {
	n := 0
	switch {
	case useAVX512BF16 && len(dst) >= 16:
		n = len(dst) &^ 15
		_ = src[n-1]
		encode16AVX512(&dst[0], &src[0], n)
	case useAVX2 && len(dst) >= 16:
		n = len(dst) &^ 15
		_ = src[n-1]
		encode16AVX2(&dst[0], &src[0], n)
	}
	encode16Go(dst[n:], src[n:])
}

func decode16(dst []float32, src []uint16) {
	n := 0
	if useAVX2 && len(dst) >= 8 {
		n = len(dst) &^ 7
		_ = src[n-1]
		decode16AVX2(&dst[0], &src[0], n)
	}
	decode16Go(dst[n:], src[n:])
}

func add16(dst []float32, src []uint16) {
	n := 0
	if useAVX2 && len(dst) >= 16 {
		n = len(dst) &^ 15
		_ = src[n-1]
		add16AVX2(&dst[0], &src[0], n)
	}
	add16Go(dst[n:], src[n:])
}

func addRound16(dst []float32, src []uint16, scale float32) {
	n := 0
	switch {
	case useAVX512BF16 && len(dst) >= 16:
		n = len(dst) &^ 15
		_ = src[n-1]
		addRound16AVX512(&dst[0], &src[0], n, scale)
	case useAVX2 && len(dst) >= 8:
		n = len(dst) &^ 7
		_ = src[n-1]
		addRound16AVX2(&dst[0], &src[0], n, scale)
	}
	addRound16Go(dst[n:], src[n:], scale)
}

// encode16AVX2 is encode16Go over n (a multiple of 16) elements.
//
//go:noescape
func encode16AVX2(dst *uint16, src *float32, n int)

// encode16AVX512 is encode16Go over n (a multiple of 16) elements.
//
//go:noescape
func encode16AVX512(dst *uint16, src *float32, n int)

// decode16AVX2 is decode16Go over n (a multiple of 8) elements.
//
//go:noescape
func decode16AVX2(dst *float32, src *uint16, n int)

// add16AVX2 is add16Go over n (a multiple of 16) elements.
//
//go:noescape
func add16AVX2(dst *float32, src *uint16, n int)

// addRound16AVX2 is addRound16Go over n (a multiple of 8) elements.
//
//go:noescape
func addRound16AVX2(dst *float32, src *uint16, n int, scale float32)

// addRound16AVX512 is addRound16Go over n (a multiple of 16) elements.
//
//go:noescape
func addRound16AVX512(dst *float32, src *uint16, n int, scale float32)
