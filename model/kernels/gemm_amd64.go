//go:build amd64 && !noasm

package kernels

//go:generate go run ./gen -out gemm_kernel_amd64.s -stubs gemm_kernel_stub_amd64.go -pkg kernels

import "golang.org/x/sys/cpu"

// kernel6x16AVX2 is the AVX2/FMA register block: 12 YMM accumulators,
// with the classic loop order and block sizes of KERNELS.md (Zen 3: 32 KiB
// L1, 512 KiB L2).
var kernel6x16AVX2 = &microKernel{
	name: "avx2-6x16", mr: 6, nr: 16, mc: 144, kc: 256, nc: 4096, bOuter: true,
	fn: func(k int, a, b, c []float32, ldc int, beta float32) {
		_ = a[k*6-1]
		_ = b[k*16-1]
		_ = c[5*ldc+15]
		gemmKernel6x16AVX2(k, &a[0], &b[0], &c[0], ldc, beta)
	},
}

// kernel14x32AVX512 is the AVX-512 register block: 28 ZMM accumulators.
// Its A sliver (14×384) stays in L1 while B slivers stream from L2 (2 MiB
// on the Xeon it was tuned on).
var kernel14x32AVX512 = &microKernel{
	name: "avx512-14x32", mr: 14, nr: 32, mc: 168, kc: 384, nc: 768,
	fn: func(k int, a, b, c []float32, ldc int, beta float32) {
		_ = a[k*14-1]
		_ = b[k*32-1]
		_ = c[13*ldc+31]
		gemmKernel14x32AVX512(k, &a[0], &b[0], &c[0], ldc, beta)
	},
}

// availableKernels lists the micro-kernels this CPU can run, fastest first.
func availableKernels() []*microKernel {
	var ks []*microKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel14x32AVX512)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel6x16AVX2)
	}
	return append(ks, kernelGo)
}

// Packer levels: the Go loops, AVX2 transposes, AVX-512 transposes,
// gathers and masked copies.
const (
	packGo = iota
	packAVX2
	packAVX512
)

// packMode selects the packers; tests lower it to cover every level.
var packMode = maxPackMode()

func maxPackMode() int {
	switch {
	case cpu.X86.HasAVX512F:
		return packAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return packAVX2
	}
	return packGo
}

// packAlongAsm is packAlong with AVX-512: 16 rows at a time, by in-register
// 16×16 transposes where all 16 rows can be read (panel widths 14 and 32),
// else by gathers. It reports false when it cannot run (no AVX-512, or
// indices beyond int32).
func packAlongAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) bool {
	if packMode == packAVX2 {
		return packAlongAVX2(dst, w, src, ld, rows, kc, scale)
	}
	if packMode != packAVX512 || 15*ld >= 1<<31 || kc == 0 {
		return false
	}
	dst = dst[:kc*w]
	if rows > 0 {
		_ = src[(rows-1)*ld+kc-1]
	}
	for g := 0; g < w; g += 16 {
		lanes := min(16, w-g)
		valid := max(0, min(lanes, rows-g))
		done := 0
		if valid == lanes && kc >= 16 && (w == 14 || w == 32) && len(src) >= (g+15)*ld+kc {
			blocks := kc / 16
			_ = src[(g+15)*ld+16*blocks-1]
			if w == 14 {
				packTrans16W14(&dst[g], &src[g*ld], ld, blocks, 1<<lanes-1, scale)
			} else {
				packTrans16W32(&dst[g], &src[g*ld], ld, blocks, 1<<lanes-1, scale)
			}
			done = 16 * blocks
		}
		if done == kc {
			continue
		}
		s := &src[0]
		if valid > 0 {
			s = &src[g*ld+done]
		}
		packGatherAVX512(&dst[done*w+g], w, s, int32(ld), kc-done, 1<<valid-1, 1<<lanes-1, scale)
	}
	return true
}

// packAcrossAsm is packAcross with AVX-512 masked loads, 16 columns at a
// time. It reports false when it cannot run.
func packAcrossAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) bool {
	if packMode != packAVX512 || kc == 0 || rows == 0 {
		return false
	}
	dst = dst[:kc*w]
	_ = src[(kc-1)*ld+rows-1]
	for g := 0; g < w; g += 16 {
		lanes := min(16, w-g)
		valid := max(0, min(lanes, rows-g))
		s := &src[0]
		if valid > 0 {
			s = &src[g]
		}
		packCopyAVX512(&dst[g], w, s, ld, kc, 1<<valid-1, 1<<lanes-1, scale)
	}
	return true
}

// packRowsAsm packs the full micro-panels of a row block stored with k
// down its columns (see packAcross), reading each source row once; it
// returns how many rows (panels·w) it packed.
func packRowsAsm(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) int {
	panels := rows / w
	if packMode != packAVX512 || (w > 16 && w != 32) || kc == 0 || panels == 0 {
		return 0
	}
	if w == 32 {
		_ = dst[panels*w*kc-1]
		_ = src[(kc-1)*ld+panels*w-1]
		packRows32AVX512(&dst[0], &src[0], ld, kc, panels, scale)
		return panels * w
	}
	_ = dst[panels*w*kc-1]
	_ = src[(kc-1)*ld+panels*w-1]
	packRowsAVX512(&dst[0], &src[0], ld, kc, panels, w, 1<<w-1, scale)
	return panels * w
}

// packAlongAVX2 packs full panels of width 6 or 16 with 8×8 AVX2
// transposes (the k remainder in Go); it reports false for other panels,
// or when the 8 rows a transpose reads are not all in src.
func packAlongAVX2(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) bool {
	if (w != 6 && w != 16) || rows != w || kc < 8 || len(src) < (max(w, 8)-1)*ld+kc {
		return false
	}
	blocks := kc / 8
	_ = dst[kc*w-1]
	_ = src[(max(w, 8)-1)*ld+8*blocks-1]
	if w == 6 {
		packTrans8W6(&dst[0], &src[0], ld, blocks, scale)
	} else {
		packTrans8W16(&dst[0], &src[0], ld, blocks, scale)
		packTrans8W16(&dst[8], &src[8*ld], ld, blocks, scale)
	}
	if done := 8 * blocks; done < kc {
		packAlongGo(dst[done*w:], w, src[done:], ld, rows, kc-done, scale)
	}
	return true
}
