package model

import "math"

// ropeTable fills the rotation table of RoPE for positions 0..T-1:
// angle(pos, k) = pos·θ^(−2k/HS) for k = 0..HS/2−1.
//
//	cos, sin (T, HS/2)
func ropeTable(cos, sin []float32, T, HS int, theta float64) {
	H := HS / 2
	for p := 0; p < T; p++ {
		for k := 0; k < H; k++ {
			a := float64(p) * math.Pow(theta, -2*float64(k)/float64(HS))
			cos[p*H+k] = float32(math.Cos(a))
			sin[p*H+k] = float32(math.Sin(a))
		}
	}
}

// ropeForward rotates, in place, interleaved pairs of one head's rows:
// row t (position pos0+t) at x[t·stride : t·stride+HS] becomes
// out[2k] = x[2k]·cos − x[2k+1]·sin, out[2k+1] = x[2k]·sin + x[2k+1]·cos.
//
//	x (T rows of HS, row stride stride), cos, sin (≥ pos0+T, HS/2)
func ropeForward(x []float32, stride, T, HS, pos0 int, cos, sin []float32) {
	H := HS / 2
	for t := 0; t < T; t++ {
		row := x[t*stride : t*stride+HS]
		c := cos[(pos0+t)*H : (pos0+t+1)*H]
		s := sin[(pos0+t)*H : (pos0+t+1)*H]
		for k := 0; k < H; k++ {
			a, b := row[2*k], row[2*k+1]
			row[2*k] = a*c[k] - b*s[k]
			row[2*k+1] = a*s[k] + b*c[k]
		}
	}
}

// ropeBackward maps, in place, the gradient of the rotated rows to the
// gradient of the rows before rotation (the transposed rotation). It needs
// no cached activations.
//
//	dx (T rows of HS, row stride stride), cos, sin (≥ pos0+T, HS/2)
func ropeBackward(dx []float32, stride, T, HS, pos0 int, cos, sin []float32) {
	H := HS / 2
	for t := 0; t < T; t++ {
		row := dx[t*stride : t*stride+HS]
		c := cos[(pos0+t)*H : (pos0+t+1)*H]
		s := sin[(pos0+t)*H : (pos0+t+1)*H]
		for k := 0; k < H; k++ {
			a, b := row[2*k], row[2*k+1]
			row[2*k] = a*c[k] + b*s[k]
			row[2*k+1] = -a*s[k] + b*c[k]
		}
	}
}
