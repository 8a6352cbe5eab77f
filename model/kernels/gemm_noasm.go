//go:build !amd64 || noasm

package kernels

// availableKernels lists the micro-kernels of this build: only the pure-Go
// one, whose loop is
//
//	for i < mr, j < nr: c[i·ldc+j] = Σ_p a[p·mr+i]·b[p·nr+j] + beta·c[i·ldc+j]
func availableKernels() []*microKernel {
	return []*microKernel{kernelGo}
}

const packGo = 0

func maxPackMode() int { return packGo }

// packAlongAsm reports that no assembly packer exists in this build.
func packAlongAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) bool {
	return false
}

// packAcrossAsm reports that no assembly packer exists in this build.
func packAcrossAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) bool {
	return false
}

// packRowsAsm reports that no assembly packer exists in this build.
func packRowsAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) int {
	return 0
}
