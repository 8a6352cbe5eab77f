//go:build amd64 && !noasm

package kernels

// haveMatvec4 reports whether MatVecRows may use matvec4AVX2 (AVX2 and
// FMA); tests lower vecLevel to cover the Go loop.
func haveMatvec4() bool { return vecLevel >= vecAVX2 }

// matvec4 calls matvec4AVX2 (k a positive multiple of 16).
func matvec4(k int, x, w *float32, ldw int, sums *[32]float32) {
	matvec4AVX2(k, x, w, ldw, sums)
}
