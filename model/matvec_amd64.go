//go:build amd64 && !noasm

package model

//go:generate go run ./matvecgen -out matvec_amd64.s -stubs matvec_stub_amd64.go -pkg model

import "golang.org/x/sys/cpu"

// haveMatvec4 reports whether matvec may use the AVX2/FMA kernel; tests
// switch it off to cover the Go loop.
var haveMatvec4 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// matvec4 calls matvec4AVX2 (k a positive multiple of 16).
func matvec4(k int, x, w *float32, ldw int, sums *[32]float32) {
	matvec4AVX2(k, x, w, ldw, sums)
}
