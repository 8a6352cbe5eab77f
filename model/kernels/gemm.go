package kernels

import "fmt"

// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, like
// BLAS sgemm: op(A) is (m,k), op(B) is (k,n), C is (m,n) with row stride ldc.
// transA means A is stored (k,m) with row stride lda, else (m,k); transB
// means B is stored (n,k) with row stride ldb, else (k,n).
// With beta == 0, C is overwritten (NaNs in C do not propagate).
// Only C's m rows × n columns are written. Gemm panics on slices too short
// for their shapes. It is safe for concurrent use; large products run on up
// to Threads() threads, small ones on the calling goroutine.
//
// The three shapes of training are
//
//	forward  y = x·Wᵀ    Gemm(false, true, ...)
//	backward dx = dy·W   Gemm(false, false, ...)
//	backward dW += dyᵀ·x Gemm(true, false, ..., beta=1)
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc}
	if err := g.check(); err != nil {
		panic(err)
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	gemmWith(activeKernel, Threads(), &g)
}

// gemmArgs are the arguments of one Gemm call.
type gemmArgs struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int

	// bPacked, when set, is op(B) already packed for the kernel: panel j
	// (columns j·nr ..) at bPacked[j·bStride:], k-major, k ≤ kc. Kernels that
	// reuse one B across calls (attention) pack it once.
	bPacked []float32
	bStride int

	// round rounds the packed blocks of A and B to bfloat16: the fp32
	// emulation of GemmBF16. A prepacked B must have been rounded.
	round bool

	// bPacked16, when set, is op(B) already packed for gemmBF16With: panel
	// q at bPacked16[q·bStride16:]. k may be less than the packed depth:
	// the packed A is zero beyond k, which cancels the panels' values there
	// (they must be finite).
	bPacked16 []uint16
	bStride16 int
}

// check reports arguments that are negative or slices too short.
func (g *gemmArgs) check() error {
	if g.m < 0 || g.n < 0 || g.k < 0 {
		return fmt.Errorf("kernels: Gemm: negative size m=%d n=%d k=%d", g.m, g.n, g.k)
	}
	ar, ac := g.m, g.k
	if g.transA {
		ar, ac = g.k, g.m
	}
	br, bc := g.k, g.n
	if g.transB {
		br, bc = g.n, g.k
	}
	if err := checkMatrix("a", g.a, ar, ac, g.lda); err != nil {
		return err
	}
	if err := checkMatrix("b", g.b, br, bc, g.ldb); err != nil {
		return err
	}
	return checkMatrix("c", g.c, g.m, g.n, g.ldc)
}

func checkMatrix(name string, s []float32, rows, cols, ld int) error {
	if ld < max(cols, 1) {
		return fmt.Errorf("kernels: Gemm: ld%s = %d < %d columns", name, ld, cols)
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		return fmt.Errorf("kernels: Gemm: len(%s) = %d, a %d×%d matrix with stride %d needs %d", name, len(s), rows, cols, ld, need)
	}
	return nil
}

// scaleMatrix sets C = beta·C (C = 0 when beta == 0).
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// microKernel is a register block with its cache block sizes: it computes
// an mr×nr tile of C from packed slivers, c = a·b + beta·c (beta 0: c = a·b).
// mc is a multiple of mr, nc of nr.
type microKernel struct {
	name       string
	mr, nr     int
	mc, kc, nc int
	// bOuter puts the loop over B slivers outside the loop over A slivers
	// (B sliver in L1, A block in L2: the classic order for small L2s);
	// otherwise the A sliver stays in L1 and B slivers stream from L2.
	bOuter bool
	fn     func(k int, a, b, c []float32, ldc int, beta float32)
}

// activeKernel is the fastest kernel of this CPU; tests swap it.
var activeKernel = availableKernels()[0]

// minParallelFlops is the product size (2·m·n·k) below which Gemm runs on
// the calling goroutine (about 0.1 ms of work on one core): waking a worker
// costs microseconds, tens of them on a busy machine, so per-head products
// (256×256×32) are faster on one thread.
const minParallelFlops = 1 << 24

// gemmJob is one Gemm call split over threads into a grid of rows × cols
// blocks of C.
type gemmJob struct {
	args       gemmArgs
	kern       *microKernel
	rows, cols int
}

var (
	gemmJobs = newFreeList[gemmJob](16)
	gemmBufs = newFreeList[gemmBuf](16)
)

// gemmBuf is the scratch of one thread: packed blocks of A and B and an
// edge tile.
type gemmBuf struct {
	a, b, tile []float32
}

// minGridSide is the size of m and n from which a parallel Gemm is cut in
// both directions, into two blocks per thread: the extra packing (each block
// packs its share of both operands) costs about 1%, and the finer parts
// let a thread whose core is busy with another process take fewer of them.
const minGridSide = 512

func gemmWith(kern *microKernel, nthreads int, g *gemmArgs) {
	parts := 1
	if 2*float64(g.m)*float64(g.n)*float64(g.k) >= minParallelFlops {
		parts = nthreads
	}
	// Split the larger of m and n: the other operand is packed by every
	// part, so it should be the smaller one.
	rows, cols := 1, 1
	if g.m >= g.n {
		rows = min(parts, ceilDiv(g.m, kern.mr))
		if rows > 1 && g.n >= minGridSide {
			cols = 2
		}
	} else {
		cols = min(parts, ceilDiv(g.n, kern.nr))
		if cols > 1 && g.m >= minGridSide {
			rows = 2
		}
	}
	if rows*cols <= 1 {
		buf := gemmBufs.get()
		gemmBlock(kern, g, buf, 0, g.m, 0, g.n)
		gemmBufs.put(buf)
		return
	}
	j := gemmJobs.get()
	j.args, j.kern, j.rows, j.cols = *g, kern, rows, cols
	parallel(j, rows*cols)
	j.args = gemmArgs{} // drop references to the caller's slices
	gemmJobs.put(j)
}

func (j *gemmJob) RunPart(i, n int) {
	buf := gemmBufs.get()
	g := &j.args
	r0, r1 := splitRange(g.m, j.kern.mr, i/j.cols, j.rows)
	c0, c1 := splitRange(g.n, j.kern.nr, i%j.cols, j.cols)
	gemmBlock(j.kern, g, buf, r0, r1, c0, c1)
	gemmBufs.put(buf)
}

// splitRange returns part i of n of [0, size), cut at multiples of unit.
func splitRange(size, unit, i, n int) (lo, hi int) {
	units := ceilDiv(size, unit)
	lo = min(size, units*i/n*unit)
	hi = min(size, units*(i+1)/n*unit)
	return lo, hi
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmBlock computes rows [i0,i1) × columns [j0,j1) of C with the BLIS loop
// nest: column panels of B (nc), k blocks (kc, B packed), row blocks of A
// (mc, A packed), then micro-tiles in the kernel's order (bOuter).
func gemmBlock(kern *microKernel, g *gemmArgs, buf *gemmBuf, i0, i1, j0, j1 int) {
	mr, nr := kern.mr, kern.nr
	kcMax := min(kern.kc, g.k)
	buf.a = grow(buf.a, min(kern.mc, ceilDiv(i1-i0, mr)*mr)*kcMax)
	if g.bPacked == nil {
		buf.b = grow(buf.b, min(kern.nc, ceilDiv(j1-j0, nr)*nr)*kcMax)
	} else if g.k > kern.kc {
		panic("kernels: prepacked B deeper than one k block")
	}
	buf.tile = grow(buf.tile, mr*nr)
	for jc := j0; jc < j1; jc += kern.nc {
		ncb := min(kern.nc, j1-jc)
		for pc := 0; pc < g.k; pc += kern.kc {
			kcb := min(kern.kc, g.k-pc)
			bs, stride, first := buf.b, kcb*nr, 0
			if g.bPacked == nil {
				packB(buf.b, g, pc, kcb, jc, ncb, nr)
				if g.round {
					roundBF16Slice(buf.b[:ceilDiv(ncb, nr)*nr*kcb])
				}
			} else {
				bs, stride, first = g.bPacked, g.bStride, jc/nr
			}
			beta := g.beta
			if pc > 0 {
				beta = 1
			}
			for ic := i0; ic < i1; ic += kern.mc {
				mcb := min(kern.mc, i1-ic)
				packA(buf.a, g, ic, mcb, pc, kcb, mr)
				if g.round {
					roundBF16Slice(buf.a[:ceilDiv(mcb, mr)*mr*kcb])
				}
				if kern.bOuter {
					for jr := 0; jr < ncb; jr += nr {
						off := (first + jr/nr) * stride
						bp := bs[off : off+kcb*nr]
						for ir := 0; ir < mcb; ir += mr {
							microTile(kern, g, buf, kcb, buf.a[ir*kcb:(ir+mr)*kcb], bp, ic+ir, jc+jr, min(mr, mcb-ir), min(nr, ncb-jr), beta)
						}
					}
					continue
				}
				for ir := 0; ir < mcb; ir += mr {
					ap := buf.a[ir*kcb : (ir+mr)*kcb]
					for jr := 0; jr < ncb; jr += nr {
						off := (first + jr/nr) * stride
						microTile(kern, g, buf, kcb, ap, bs[off:off+kcb*nr], ic+ir, jc+jr, min(mr, mcb-ir), min(nr, ncb-jr), beta)
					}
				}
			}
		}
	}
}

// microTile computes the rows × cols tile of C at (i, j) from packed
// slivers; partial tiles go through the scratch tile.
func microTile(kern *microKernel, g *gemmArgs, buf *gemmBuf, kc int, ap, bp []float32, i, j, rows, cols int, beta float32) {
	ct := g.c[i*g.ldc+j:]
	if rows == kern.mr && cols == kern.nr {
		kern.fn(kc, ap, bp, ct, g.ldc, beta)
		return
	}
	kern.fn(kc, ap, bp, buf.tile, kern.nr, 0)
	mergeTile(ct, g.ldc, buf.tile, kern.nr, rows, cols, beta)
}

// mergeTile sets c[i,j] = t[i,j] + beta·c[i,j] for i < rows, j < cols.
func mergeTile(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		cr := c[i*ldc : i*ldc+cols]
		tr := t[i*ldt : i*ldt+cols]
		if beta == 0 {
			copy(cr, tr)
			continue
		}
		for j, v := range tr {
			cr[j] = v + beta*cr[j]
		}
	}
}
