package allreduce

// The element-wise kernels of the reduction. add32 and addScale32 have
// AVX2 versions on amd64 (add_amd64.s) that perform exactly these IEEE
// operations per element, so results are bit-identical either way; the
// float64 ones only ever see small vectors.

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
