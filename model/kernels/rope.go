package kernels

import "math"

// RoPETable fills the rotation table of RoPE for positions 0..T−1:
// angle(pos, i) = pos·θ^(−2i/dh) for i < dh/2.
//
//	cos, sin (T, dh/2)
func RoPETable(cos, sin []float32, T, dh int, theta float64) {
	H := dh / 2
	for p := 0; p < T; p++ {
		for i := 0; i < H; i++ {
			a := float64(p) * math.Pow(theta, -2*float64(i)/float64(dh))
			cos[p*H+i] = float32(math.Cos(a))
			sin[p*H+i] = float32(math.Sin(a))
		}
	}
}

// RoPEForward rotates, in place, the interleaved pairs of every head of x;
// row t of each batch row is at position pos0+t:
//
//	x[2i], x[2i+1] = x[2i]·cos − x[2i+1]·sin, x[2i]·sin + x[2i+1]·cos   (cos, sin at [pos0+t, i])
//
//	x (B, T, rows of stride ld; H heads of dh), cos, sin (≥ pos0+T, dh/2)
func RoPEForward(x, cos, sin []float32, B, T, H, dh, ld, pos0 int) {
	rope(x, cos, sin, B, T, H, dh, ld, pos0, 1)
}

// RoPEBackward maps, in place, the gradient of rotated rows to the gradient
// of the rows before rotation (the transposed rotation, angle −θ).
//
//	dx (B, T, rows of stride ld; H heads of dh), cos, sin (≥ pos0+T, dh/2)
func RoPEBackward(dx, cos, sin []float32, B, T, H, dh, ld, pos0 int) {
	rope(dx, cos, sin, B, T, H, dh, ld, pos0, -1)
}

func rope(x, cos, sin []float32, B, T, H, dh, ld, pos0 int, sign float32) {
	if B*T*H*dh == 0 {
		return
	}
	checkLen("RoPE", (B*T-1)*ld+H*dh, x)
	checkLen("RoPE", (pos0+T)*(dh/2), cos, sin)
	run(ropeJobs, ropeArgs{x: x, cos: cos, sin: sin, B: B, T: T, H: H, dh: dh, ld: ld, pos0: pos0, sign: sign},
		partsFor(B*T, float64(B*T*H*dh)), ropePart)
}

type ropeArgs struct {
	x, cos, sin           []float32
	B, T, H, dh, ld, pos0 int
	sign                  float32
}

var ropeJobs = newFreeList[job[ropeArgs]](8)

func ropePart(a *ropeArgs, i, n int) {
	lo, hi := splitRange(a.B*a.T, 1, i, n)
	half := a.dh / 2
	for bt := lo; bt < hi; {
		// the rows of one sequence from bt: consecutive table rows
		end := min(hi, (bt/a.T+1)*a.T)
		pos := a.pos0 + bt%a.T
		if ropeRowsAsm(a.x[bt*a.ld:], a.ld, end-bt, a.H, a.dh, a.cos[pos*half:], a.sin[pos*half:], a.sign) {
			bt = end
			continue
		}
		ropeRowsGo(a, bt, end)
		bt = end
	}
}

// ropeRowsGo is ropePart's loop over rows [lo, hi) of one sequence.
func ropeRowsGo(a *ropeArgs, lo, hi int) {
	half := a.dh / 2
	for bt := lo; bt < hi; bt++ {
		pos := a.pos0 + bt%a.T
		c := a.cos[pos*half : (pos+1)*half]
		s := a.sin[pos*half : (pos+1)*half]
		s = s[:len(c)]
		row := a.x[bt*a.ld : bt*a.ld+a.H*a.dh]
		for h := 0; h < a.H; h++ {
			hd := row[h*a.dh : h*a.dh+2*len(c)]
			for k, ck := range c {
				sk := a.sign * s[k]
				p := (*[2]float32)(hd[2*k:])
				x0, x1 := p[0], p[1]
				p[0] = x0*ck - x1*sk
				p[1] = x0*sk + x1*ck
			}
		}
	}
}
