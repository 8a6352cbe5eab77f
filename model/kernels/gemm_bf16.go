package kernels

import (
	"fmt"
	"sync"

	"github.com/ringtrain/ringtrain/internal/bf16"
)

// Precision is the arithmetic of a kernel's matrix products.
type Precision uint8

const (
	// FP32 multiplies float32 inputs.
	FP32 Precision = iota
	// BF16 rounds both inputs of every product to bfloat16 (round to
	// nearest even, see internal/bf16) and accumulates in float32, as
	// torch.autocast does on CPU; outputs stay float32.
	BF16
)

// String returns "fp32" or "bf16", the spelling of the job file.
func (p Precision) String() string {
	switch p {
	case FP32:
		return "fp32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// ParsePrecision parses "fp32" or "bf16".
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "fp32":
		return FP32, nil
	case "bf16":
		return BF16, nil
	}
	return 0, fmt.Errorf("precision %q is neither fp32 nor bf16", s)
}

// GemmBF16 is Gemm with both inputs rounded to bfloat16:
//
//	C = bf16(alpha·op(A))·bf16(op(B)) + beta·C
//
// with float32 products and sums (the products of two bfloat16 values are
// exact in float32). alpha scales A before it is rounded, as Gemm scales
// it while packing. It runs on AMX tiles or AVX512_BF16 dot products where
// the CPU has them, else as Gemm on rounded copies (KernelName says which).
// Results agree with the float64 product of the rounded inputs to float32
// accumulation error; the paths differ only in the order of the sums.
func GemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
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
	if kern := activeBF16(); kern != nil {
		gemmBF16With(kern, Threads(), &g)
		return
	}
	g.round = true
	gemmWith(activeKernel, Threads(), &g)
}

// KernelName names the micro-kernel that runs the products of precision p
// on this CPU and build.
func KernelName(p Precision) string {
	switch {
	case p == FP32:
		return activeKernel.name
	case activeBF16() != nil:
		return activeBF16().name
	}
	return activeKernel.name + " on rounded inputs"
}

// The packed bfloat16 layout shared by the AMX and AVX512_BF16 kernels.
// k is padded with zeros to a multiple of bfStep; a step is 32 values of k
// (one AMX tile deep), 16 pairs.
//
// An A strip holds 32 rows of op(A), step by step, each row's 32 values of
// the step contiguous (the row of an AMX A tile):
//
//	strip[s·1024 + r·32 + p%32] = bf16(alpha·op(A)[r, p]),  s = p/32
//
// A B panel holds 32 columns of op(B), pair by pair (the VNNI layout of an
// AMX B tile and of VDPBF16PS):
//
//	panel[(p/2)·64 + j·2 + p%2] = bf16(op(B)[p, j])
const (
	bfStep  = 32
	bfRows  = 32              // rows of an A strip
	bfCols  = 32              // columns of a B panel
	bfBlock = bfRows * bfStep // values of one step of a strip or a panel
)

// bf16Kernel computes strips of C from packed bfloat16 operands:
//
//	C[r, 32·q + j] (+)= Σ_{p < 32·ks} strip[r, p]·panel_q[p, j]   for r, j < 32, q < panels
//
// where panel q starts pstride values after panel q−1, and C is added to
// when acc is set, else overwritten. mc and kc are its cache blocks: rows
// of A packed at a time (a multiple of 32) and k values per strip pass (a
// multiple of bfStep); nc is the number of panels per pass over a strip.
type bf16Kernel struct {
	name   string
	mc, kc int
	nc     int
	strip  func(ks int, a, b []uint16, panels, pstride int, c []float32, ldc int, acc bool)
}

// activeBF16 returns the fastest bfloat16 kernel of this CPU, or nil when
// it has none or rounding into the float32 kernels is faster (GemmBF16
// then does that). Chosen at the first call; see fastestBF16Kernel.
var activeBF16 = sync.OnceValue(fastestBF16Kernel)

// bf16Job is one GemmBF16 call: B packed once for all parts, then C split
// into a grid of rows × cols parts, each packing its own rows of A.
type bf16Job struct {
	args       gemmArgs
	kern       *bf16Kernel
	ks, np     int      // k steps, B panels
	b          []uint16 // B packed by this job: np panels of ks·bfBlock values
	packed     []uint16 // the packed B of this call (b, or gemmArgs.bPacked16)
	pstride    int      // values from one panel of packed to the next
	packing    bool     // RunPart packs B panels instead of computing C
	rows, cols int
}

// bf16Buf is the scratch of one part: its packed rows of A and a strip of
// C for partial tiles.
type bf16Buf struct {
	a    []uint16
	tile []float32
}

var (
	bf16Jobs = newFreeList[bf16Job](4)
	bf16Bufs = newFreeList[bf16Buf](8)
)

func growU16(s []uint16, n int) []uint16 {
	if cap(s) < n {
		return make([]uint16, n)
	}
	return s[:n]
}

func gemmBF16With(kern *bf16Kernel, nthreads int, g *gemmArgs) {
	if g.beta != 0 && g.beta != 1 {
		// The kernels add to C or overwrite it; other betas scale first.
		scaleMatrix(g.m, g.n, g.beta, g.c, g.ldc)
		g.beta = 1
	}
	j := bf16Jobs.get()
	j.args, j.kern = *g, kern
	j.ks, j.np = ceilDiv(g.k, bfStep), ceilDiv(g.n, bfCols)
	j.pstride = j.ks * bfBlock
	b := g.bPacked16
	if b == nil {
		j.b = growU16(j.b, j.np*j.pstride)
		b = j.b
	} else {
		j.pstride = g.bStride16
	}
	j.packed = b
	threads := 1
	if 2*float64(g.m)*float64(g.n)*float64(g.k) >= minParallelFlops {
		threads = nthreads
	}
	// Several parts per thread: they are claimed dynamically, so a thread
	// whose core is busy with another process takes fewer of them.
	parts := threads
	if threads > 1 {
		parts *= partsPerThread
	}
	if g.bPacked16 == nil {
		j.packing = true
		parallel(j, min(parts, j.np))
		j.packing = false
	}
	// Rows first: every row part reads the one packed B and packs its own
	// rows of A. Columns only when there are too few strips to keep the
	// threads busy (each column part packs the same rows of A again).
	strips := ceilDiv(g.m, bfRows)
	j.rows, j.cols = min(parts, strips), 1
	if j.rows < threads {
		j.cols = min(ceilDiv(threads, j.rows), j.np)
	}
	parallel(j, j.rows*j.cols)
	j.args, j.packed = gemmArgs{}, nil
	bf16Jobs.put(j)
}

func (j *bf16Job) RunPart(i, n int) {
	if j.packing {
		lo, hi := splitRange(j.np, 1, i, n)
		packPanelsBF16(j.b[lo*j.pstride:], j.pstride, &j.args, lo, hi, j.ks)
		return
	}
	g := &j.args
	r0, r1 := splitRange(g.m, bfRows, i/j.cols, j.rows)
	p0, p1 := splitRange(j.np, 1, i%j.cols, j.cols)
	if r0 == r1 || p0 == p1 {
		return
	}
	buf := bf16Bufs.get()
	j.compute(buf, r0, r1, p0, p1)
	bf16Bufs.put(buf)
}

// compute does rows [r0, r1) × panels [p0, p1) of C.
func (j *bf16Job) compute(buf *bf16Buf, r0, r1, p0, p1 int) {
	g, kern := &j.args, j.kern
	pstride := j.pstride
	kcSteps := kern.kc / bfStep
	for ic := r0; ic < r1; ic += kern.mc {
		mcb := min(kern.mc, r1-ic)
		strips := ceilDiv(mcb, bfRows)
		for s0 := 0; s0 < j.ks; s0 += kcSteps {
			ksb := min(kcSteps, j.ks-s0)
			// pack this block's strips for steps [s0, s0+ksb)
			buf.a = growU16(buf.a, strips*ksb*bfBlock)
			for s := range strips {
				i := ic + s*bfRows
				packStripBF16(buf.a[s*ksb*bfBlock:(s+1)*ksb*bfBlock], g, i, min(bfRows, g.m-i), s0*bfStep, ksb)
			}
			acc := g.beta == 1 || s0 > 0
			for jc := p0; jc < p1; jc += kern.nc {
				pn := min(kern.nc, p1-jc)
				for s := range strips {
					i := ic + s*bfRows
					j.stripTile(buf, buf.a[s*ksb*bfBlock:(s+1)*ksb*bfBlock], i, jc, pn, s0, ksb, pstride, acc)
				}
			}
		}
	}
}

// stripTile computes C[i:i+32, 32·jc : 32·(jc+pn)] from one packed strip
// and pn panels (k steps [s0, s0+ksb)); tiles that stick out of C go
// through the scratch strip.
func (j *bf16Job) stripTile(buf *bf16Buf, a []uint16, i, jc, pn, s0, ksb, pstride int, acc bool) {
	g, kern := &j.args, j.kern
	rows := min(bfRows, g.m-i)
	full := pn // panels with 32 columns inside C
	if jc+pn == j.np && g.n%bfCols != 0 {
		full--
	}
	b := j.packed[jc*pstride+s0*bfBlock:]
	beta := float32(0)
	if acc {
		beta = 1
	}
	if full > 0 {
		if rows == bfRows {
			kern.strip(ksb, a, b, full, pstride, g.c[i*g.ldc+jc*bfCols:], g.ldc, acc)
		} else {
			w := full * bfCols
			buf.tile = grow(buf.tile, bfRows*w)
			kern.strip(ksb, a, b, full, pstride, buf.tile, w, false)
			mergeTile(g.c[i*g.ldc+jc*bfCols:], g.ldc, buf.tile, w, rows, w, beta)
		}
	}
	if full < pn {
		q := jc + full
		buf.tile = grow(buf.tile, bfRows*bfCols)
		kern.strip(ksb, a, b[full*pstride:], 1, pstride, buf.tile, bfCols, false)
		mergeTile(g.c[i*g.ldc+q*bfCols:], g.ldc, buf.tile, bfCols, rows, g.n-q*bfCols, beta)
	}
}

// packStripBF16 packs rows [i, i+rows) of alpha·op(A), k steps
// [p0/32, p0/32+ks), into one strip (rows ≥ rows and k ≥ k are zero).
func packStripBF16(dst []uint16, g *gemmArgs, i, rows, p0, ks int) {
	dst = dst[:ks*bfBlock]
	if packStripAsm(dst, g, i, rows, p0, ks) {
		return
	}
	packStripGo(dst, g, i, rows, p0, ks)
}

// packStripGo is packStripBF16 in Go:
//
//	dst[s·1024 + r·32 + t] = bf16(alpha·op(A)[i+r, p0+32s+t]), 0 outside op(A)
func packStripGo(dst []uint16, g *gemmArgs, i, rows, p0, ks int) {
	clear(dst)
	kEnd := min(g.k, p0+ks*bfStep)
	for r := range rows {
		for p := p0; p < kEnd; p++ {
			var v float32
			if g.transA {
				v = g.a[p*g.lda+i+r]
			} else {
				v = g.a[(i+r)*g.lda+p]
			}
			q := p - p0
			dst[q/bfStep*bfBlock+r*bfStep+q%bfStep] = bf16.FromFloat32(g.alpha * v)
		}
	}
}

// packPanelsBF16 packs panels [q0, q1) of op(B) (columns [32·q0, 32·q1)),
// all ks steps, panel q at dst[(q−q0)·pstride:] (columns ≥ n and k ≥ k
// are zero).
func packPanelsBF16(dst []uint16, pstride int, g *gemmArgs, q0, q1, ks int) {
	if packPanelsAsm(dst, pstride, g, q0, q1, ks) {
		return
	}
	for q := q0; q < q1; q++ {
		packPanelGo(dst[(q-q0)*pstride:][:ks*bfBlock], g, q*bfCols, ks)
	}
}

// packPanelGo packs the one panel of columns [j, j+32) of op(B):
//
//	dst[(p/2)·64 + c·2 + p%2] = bf16(op(B)[p, j+c]), 0 outside op(B)
func packPanelGo(dst []uint16, g *gemmArgs, j, ks int) {
	clear(dst)
	cols := min(bfCols, g.n-j)
	for c := range cols {
		for p := range g.k {
			var v float32
			if g.transB {
				v = g.b[(j+c)*g.ldb+p]
			} else {
				v = g.b[p*g.ldb+j+c]
			}
			dst[p/2*2*bfCols+c*2+p%2] = bf16.FromFloat32(v)
		}
	}
}

// bf16KernelGo is the reference of the bfloat16 strip kernels (tests run
// the packed path with it where the CPU has neither AMX nor AVX512_BF16).
var bf16KernelGo = &bf16Kernel{name: "go-bf16", mc: 128, kc: 512, nc: 8, strip: stripGo}

// stripGo computes the strip in Go, summing p in order:
//
//	for r, j < 32, q < panels:
//	    c[r·ldc + 32q + j] (+)= Σ_p a[(p/32)·1024 + r·32 + p%32] · b[q·pstride + (p/2)·64 + j·2 + p%2]
func stripGo(ks int, a, b []uint16, panels, pstride int, c []float32, ldc int, acc bool) {
	a = a[:ks*bfBlock]
	for q := range panels {
		bp := b[q*pstride : q*pstride+ks*bfBlock]
		for r := range bfRows {
			row := c[r*ldc+q*bfCols : r*ldc+q*bfCols+bfCols]
			for jj := range row {
				var s float32
				if acc {
					s = row[jj]
				}
				for p := range ks * bfStep {
					s += bf16.ToFloat32(a[p/bfStep*bfBlock+r*bfStep+p%bfStep]) * bf16.ToFloat32(bp[p/2*2*bfCols+jj*2+p%2])
				}
				row[jj] = s
			}
		}
	}
}

// roundBF16Slice rounds every value of x to bfloat16 (in place).
func roundBF16Slice(x []float32) {
	n := roundBF16Asm(x)
	for i := n; i < len(x); i++ {
		x[i] = bf16.Round(x[i])
	}
}
