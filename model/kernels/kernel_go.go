package kernels

// kernelGo is the pure-Go register block, used where no assembly kernel
// runs (other architectures, -tags noasm, x86 CPUs without AVX2/FMA).
var kernelGo = &microKernel{
	name: "go-4x8", mr: 4, nr: 8, mc: 128, kc: 256, nc: 4096, bOuter: true,
	fn: gemmKernelGo,
}

// gemmKernelGo computes one 4×8 tile of C from packed slivers a (k×4) and
// b (k×8):
//
//	for i < 4, j < 8: c[i·ldc+j] = Σ_p a[p·4+i]·b[p·8+j] + beta·c[i·ldc+j]
//
// With beta == 0, c is overwritten and not read.
func gemmKernelGo(k int, a, b, c []float32, ldc int, beta float32) {
	var acc [4][8]float32
	a = a[:k*4]
	b = b[:k*8]
	for p := 0; p < k; p++ {
		av := (*[4]float32)(a[p*4:])
		bv := (*[8]float32)(b[p*8:])
		for i, x := range av {
			r := &acc[i]
			r[0] += x * bv[0]
			r[1] += x * bv[1]
			r[2] += x * bv[2]
			r[3] += x * bv[3]
			r[4] += x * bv[4]
			r[5] += x * bv[5]
			r[6] += x * bv[6]
			r[7] += x * bv[7]
		}
	}
	for i := range acc {
		row := (*[8]float32)(c[i*ldc:])
		if beta == 0 {
			*row = acc[i]
			continue
		}
		for j, v := range acc[i] {
			row[j] = v + beta*row[j]
		}
	}
}
