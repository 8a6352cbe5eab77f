//go:build !amd64 || noasm

package kernels

// availableKernels lists the micro-kernels of this build: only the pure-Go
// one, whose loop is
//
//	for i < mr, j < nr: c[i·ldc+j] = Σ_p a[p·mr+i]·b[p·nr+j] + beta·c[i·ldc+j]
func availableKernels() []*microKernel {
	return []*microKernel{kernelGo}
}
