//go:build amd64 && !noasm

package kernels

import (
	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/ringtrain/ringtrain/internal/bf16"
)

// kernelAMX is the AMX register block: four 16×16 float32 tiles of C
// (a 32×32 block), two tiles of A and two of B, TDPBF16PS 16×16×32 each.
// A strip of 32×512 (32 KiB) stays in L1 while 32 panels of B (1 MiB)
// stream from L2.
var kernelAMX = &bf16Kernel{
	name: "amx-bf16-32x32", mc: 512, kc: 512, nc: 32,
	strip: func(ks int, a, b []uint16, panels, pstride int, c []float32, ldc int, acc bool) {
		checkStrip(ks, a, b, panels, pstride, c, ldc)
		amxStripBF16(ks, &a[0], &b[0], panels, pstride*2, &c[0], ldc, b2i(acc), &amxConfig[0])
	},
}

// kernelDPBF16 is the AVX512_BF16 register block: 8 rows × 32 columns of
// C in 16 ZMM accumulators, VDPBF16PS consuming k in pairs. kc = 512 takes
// the model's k = 512 products in one pass over C: on Zen 5 the logits
// product (2048×10000×512) ran at 430–441 GFLOPS against 317–335 with
// kc = 256, and no step product was slower (BenchmarkGemmBF16BlockSizes).
var kernelDPBF16 = &bf16Kernel{
	name: "avx512bf16-8x32", mc: 256, kc: 512, nc: 16,
	strip: func(ks int, a, b []uint16, panels, pstride int, c []float32, ldc int, acc bool) {
		checkStrip(ks, a, b, panels, pstride, c, ldc)
		dpStripBF16(ks, &a[0], &b[0], panels, pstride*2, &c[0], ldc, b2i(acc))
	},
}

func checkStrip(ks int, a, b []uint16, panels, pstride int, c []float32, ldc int) {
	if ks < 1 || panels < 1 {
		panic("kernels: empty bf16 strip")
	}
	_ = a[ks*bfBlock-1]
	_ = b[(panels-1)*pstride+ks*bfBlock-1]
	_ = c[(bfRows-1)*ldc+panels*bfCols-1]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// amxConfig is the tile configuration of kernelAMX (palette 1, all eight
// tiles 16 rows of 64 bytes).
var amxConfig = func() (c [64]byte) {
	c[0] = 1
	for t := range 8 {
		c[16+2*t] = 64
		c[48+t] = 16
	}
	return c
}()

// Linux makes a process ask for the AMX tile state before it may use it.
const (
	archReqXcompPerm = 0x1023
	xfeatureTileData = 18
)

func amxPermitted() bool {
	_, _, errno := unix.Syscall(unix.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureTileData, 0)
	return errno == 0
}

// hasBF16Packers reports the instructions the bfloat16 packers use
// (VCVTNE2PS2BF16, VPERMW).
func hasBF16Packers() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512BF16
}

// availableBF16Kernels lists the bfloat16 kernels this CPU can run,
// fastest first: AMX, then VDPBF16PS.
func availableBF16Kernels() []*bf16Kernel {
	if !hasBF16Packers() {
		return nil
	}
	var ks []*bf16Kernel
	if cpu.X86.HasAMXTile && cpu.X86.HasAMXBF16 && amxPermitted() {
		ks = append(ks, kernelAMX)
	}
	return append(ks, kernelDPBF16)
}

// fastestBF16Kernel picks AMX where the CPU and the OS allow it. Else
// VDPBF16PS only if it is faster than the float32 FMA it replaces: it runs
// at twice the FMA's rate on AMD Zen 4 and Zen 5 but at half of it on Intel cores
// (Sapphire and Emerald Rapids with AMX hidden, as in some VMs), where
// rounding into the float32 kernel is faster. Both loops are timed once,
// about 0.1 s; the gap is 2× either way, far above the timing noise.
func fastestBF16Kernel() *bf16Kernel {
	ks := availableBF16Kernels()
	if len(ks) == 0 {
		return nil
	}
	if ks[0] == kernelDPBF16 && measurePeak(peakLoopDPBF16).gflops <= measurePeak(peakLoopFP32()).gflops {
		return nil
	}
	return ks[0]
}

// packStripAsm is packStripBF16 with AVX-512; it reports false when it
// cannot run.
func packStripAsm(dst []uint16, g *gemmArgs, i, rows, p0, ks int) bool {
	if !hasBF16Packers() {
		return false
	}
	kv := min(g.k-p0, ks*bfStep) // valid k values
	full, tail := kv/bfStep, kv%bfStep
	if !g.transA {
		if rows < bfRows || full+min(tail, 1) < ks {
			clear(dst)
		}
		_ = g.a[(i+rows-1)*g.lda+p0+kv-1]
		packAlongBF16(&dst[0], &g.a[i*g.lda+p0], g.lda, rows, full, tailMask(tail), g.alpha)
		return true
	}
	if full > 0 {
		_ = g.a[(p0+full*bfStep-1)*g.lda+i+rows-1]
		packPairsTBF16(&dst[0], &g.a[p0*g.lda+i], g.lda, full, tailMask(rows), g.alpha)
	}
	if full < ks {
		packStripGo(dst[full*bfBlock:], g, i, rows, p0+full*bfStep, ks-full)
	}
	return true
}

// packPanelsAsm is packPanelsBF16 with AVX-512; it reports false when it
// cannot run.
func packPanelsAsm(dst []uint16, pstride int, g *gemmArgs, q0, q1, ks int) bool {
	if !hasBF16Packers() {
		return false
	}
	panel := func(q int) []uint16 { return dst[(q-q0)*pstride:][:ks*bfBlock] }
	if g.transB {
		// A panel is 32 rows of B along k, read in memory order.
		full, tail := g.k/bfStep, g.k%bfStep
		for q := q0; q < q1; q++ {
			j := q * bfCols
			if g.n-j < bfCols {
				packPanelGo(panel(q), g, j, ks)
				continue
			}
			for h := range 2 {
				_ = g.b[(j+16*h+15)*g.ldb+g.k-1]
				packAlongTBF16(&panel(q)[h*32], &g.b[(j+16*h)*g.ldb], g.ldb, full, tailMask(tail), 1)
			}
		}
		return true
	}
	for q := q0; q < q1; q++ {
		if g.n-q*bfCols < bfCols || g.k%bfStep != 0 {
			clear(panel(q))
		}
	}
	// A panel is 32 columns of B: packed a panel at a time, each row would
	// be read 128 bytes at a time far apart, which the prefetchers follow
	// badly when B comes from memory. So a block of rows goes into every
	// panel before the next block: B is read row after row.
	const block = 32 // pairs: 64 rows
	pairs := g.k / 2
	for p0 := 0; p0 < pairs; p0 += block {
		np := min(block, pairs-p0)
		for q := q0; q < q1; q++ {
			j := q * bfCols
			cols := min(bfCols, g.n-j)
			for h := range 2 {
				lanes := min(16, cols-16*h)
				if lanes <= 0 {
					continue
				}
				_ = g.b[(2*(p0+np)-1)*g.ldb+j+16*h+lanes-1]
				packPairsBF16(&panel(q)[p0*2*bfCols+h*16*2], &g.b[2*p0*g.ldb+j+16*h], g.ldb, np, 1<<lanes-1, 1)
			}
		}
	}
	if g.k%2 == 1 { // the last k value pairs with zero
		p := g.k - 1
		for q := q0; q < q1; q++ {
			j := q * bfCols
			d := panel(q)
			for c := range min(bfCols, g.n-j) {
				d[p/2*2*bfCols+c*2] = bf16.FromFloat32(g.b[p*g.ldb+j+c])
			}
		}
	}
	return true
}

// tailMask selects the first n (≤ 32) of 32 lanes.
func tailMask(n int) uint32 { return uint32(1)<<n - 1 }

// roundBF16Asm rounds the longest prefix of x that its kernel takes (a
// multiple of 16 values with AVX512_BF16's conversion, of 8 with AVX2
// integer operations) and returns its length.
func roundBF16Asm(x []float32) int {
	if hasBF16Packers() && len(x) >= 16 {
		n := len(x) &^ 15
		roundBF16AVX512(&x[0], n)
		return n
	}
	n := len(x) &^ 7
	if !cpu.X86.HasAVX2 || n == 0 {
		return 0
	}
	roundBF16AVX2(&x[0], n)
	return n
}
