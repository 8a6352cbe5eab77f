package allreduce

import "github.com/ringtrain/ringtrain/internal/bf16"

// The element-wise kernels of the reduction. add32, addScale32 and the
// bfloat16 ones have AVX2 (and AVX-512) versions on amd64 (add_amd64.s)
// that perform exactly these IEEE operations and roundings per element, so
// results are bit-identical either way; the float64 ones only ever see
// small vectors.

// add32Go sets dst[i] = src[i] + dst[i].
func add32Go(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = src[i] + dst[i]
	}
}

// addScale32Go sets dst[i] = (src[i] + dst[i]) · scale.
func addScale32Go(dst, src []float32, scale float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = (src[i] + dst[i]) * scale
	}
}

// add64 sets dst[i] = src[i] + dst[i].
func add64(dst, src []float64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = src[i] + dst[i]
	}
}

// addScale64 sets dst[i] = (src[i] + dst[i]) · scale.
func addScale64(dst, src []float64, scale float64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = (src[i] + dst[i]) * scale
	}
}

// encode16Go sets dst[i] = bf16(src[i]) (WireBF16 sends).
func encode16Go(dst []uint16, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = bf16.FromFloat32(src[i])
	}
}

// decode16Go sets dst[i] = src[i] widened to float32 (all-gather).
func decode16Go(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = bf16.ToFloat32(src[i])
	}
}

// add16Go sets dst[i] = src[i] + dst[i], src widened (reduce-scatter).
func add16Go(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = bf16.ToFloat32(src[i]) + dst[i]
	}
}

// addRound16Go sets dst[i] = bf16((src[i] + dst[i])·scale), src widened,
// the result kept as float32 (the last reduce-scatter step).
func addRound16Go(dst []float32, src []uint16, scale float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = bf16.Round((bf16.ToFloat32(src[i]) + dst[i]) * scale)
	}
}
