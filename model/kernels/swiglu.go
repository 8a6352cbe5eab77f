package kernels

// SwiGLUForward computes the gated unit of the feed-forward block, where
// each row of h holds a = W1·x (F values) then b = W3·x (F values):
//
//	out[i,j] = SiLU(a[i,j])·b[i,j],  SiLU(a) = a·σ(a)
//
//	out (N, F), h (N, 2F)
func SwiGLUForward(out, h []float32, N, F int) {
	checkLen("SwiGLUForward", N*F, out)
	checkLen("SwiGLUForward", 2*N*F, h)
	run(swiFwdJobs, swiArgs{out: out, h: h, N: N, F: F}, partsFor(N, float64(N*F)*4), swigluForwardPart)
}

// SwiGLUBackward writes (overwrites) the gradient of h:
//
//	da = dout·b·σ(a)·(1 + a·(1−σ(a))),  db = dout·SiLU(a)
//
//	dh (N, 2F), dout (N, F), h (N, 2F)
func SwiGLUBackward(dh, dout, h []float32, N, F int) {
	checkLen("SwiGLUBackward", N*F, dout)
	checkLen("SwiGLUBackward", 2*N*F, h, dh)
	run(swiBwdJobs, swiArgs{out: dh, dout: dout, h: h, N: N, F: F}, partsFor(N, float64(N*F)*4), swigluBackwardPart)
}

type swiArgs struct {
	out, dout, h []float32
	N, F         int
}

var (
	swiFwdJobs = newFreeList[job[swiArgs]](8)
	swiBwdJobs = newFreeList[job[swiArgs]](8)
)

func swigluForwardPart(s *swiArgs, i, n int) {
	lo, hi := splitRange(s.N, 1, i, n)
	F := s.F
	for r := lo; r < hi; r++ {
		a := s.h[2*r*F : 2*r*F+F]
		b := s.h[2*r*F+F : 2*r*F+2*F]
		o := s.out[r*F : (r+1)*F]
		swigluRow(o, a, b)
	}
}

func swigluBackwardPart(s *swiArgs, i, n int) {
	lo, hi := splitRange(s.N, 1, i, n)
	F := s.F
	for r := lo; r < hi; r++ {
		a := s.h[2*r*F : 2*r*F+F]
		b := s.h[2*r*F+F : 2*r*F+2*F]
		da := s.out[2*r*F : 2*r*F+F]
		db := s.out[2*r*F+F : 2*r*F+2*F]
		d := s.dout[r*F : (r+1)*F]
		swigluGradRow(da, db, d, a, b)
	}
}
