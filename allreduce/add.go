package allreduce

// add32 sets dst[i] = src[i] + dst[i].
func add32(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = src[i] + dst[i]
	}
}

// addScale32 sets dst[i] = (src[i] + dst[i]) · scale.
func addScale32(dst, src []float32, scale float32) {
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
