//go:build !amd64 || noasm

package model

// haveMatvec4 is false: this build has no assembly matvec kernel, and
// matvec runs its Go loop, whose rows compute
//
//	out[o] = Σ_p x[p]·w[o·C+p]
var haveMatvec4 = false

func matvec4(k int, x, w *float32, ldw int, sums *[32]float32) {
	panic("model: matvec4 without assembly")
}
