//go:build !amd64 || noasm

package kernels

// haveMatvec4 is false: this build has no assembly matvec kernel, and
// MatVecRows runs its Go loop, whose rows compute
//
//	out[o] = Σ_p x[p]·w[o·ldw+p]
func haveMatvec4() bool { return false }

func matvec4(k int, x, w *float32, ldw int, sums *[32]float32) {
	panic("kernels: matvec4 without assembly")
}
