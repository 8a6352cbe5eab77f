package kernels

import "math"

var negInf = math.Inf(-1)

// Expf is a float32 e^x with a relative error of a few ulp, much cheaper
// than math.Exp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6
// polynomial (Cephes expf), 2^n put into the exponent bits.
// It returns 0 below −87.3 (where float32 underflows), +Inf above 88.7,
// and NaN for NaN.
func Expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	// round x·log2e to the nearest integer by adding and removing 1.5·2²³
	const magic = 12582912
	n := (x*log2e + magic) - magic
	r := x - n*ln2hi
	r -= n * ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}
