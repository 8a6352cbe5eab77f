package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The peak loops of PeakGFLOPS: independent multiply-adds on registers
// only, as many per iteration as the core can have in flight (24
// accumulators cover FMA latency 4 × 2 pipes × 3), n iterations.

func peakLoops() {
	peakFMA("peakFMA512", 64)
	peakFMA("peakFMA256", 32)
	peakDPBF16()
	peakAMX()
}

// peakFMA emits 24 VFMADD231PS per iteration on vectors of vecBytes.
func peakFMA(name string, vecBytes int) {
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(fmt.Sprintf("%s runs n iterations of 24 independent %d-bit VFMADD231PS.", name, vecBytes*8))
	n := Load(Param("n"), GP64())
	newVec := func() VecVirtual {
		if vecBytes == 64 {
			return ZMM()
		}
		return YMM()
	}
	acc := make([]VecVirtual, 24)
	for i := range acc {
		acc[i] = newVec()
		if vecBytes == 64 {
			VPXORD(acc[i], acc[i], acc[i])
		} else {
			VXORPS(acc[i], acc[i], acc[i])
		}
	}
	x, y := newVec(), newVec()
	if vecBytes == 64 {
		VPXORD(x, x, x)
		VPXORD(y, y, y)
	} else {
		VXORPS(x, x, x)
		VXORPS(y, y, y)
	}
	Label(name + "_loop")
	for _, a := range acc {
		VFMADD231PS(x, y, a)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}

// peakDPBF16 emits 24 VDPBF16PS (zmm) per iteration.
func peakDPBF16() {
	TEXT("peakDPBF16", NOSPLIT, "func(n int)")
	Doc("peakDPBF16 runs n iterations of 24 independent VDPBF16PS (512-bit).")
	Load(Param("n"), RAX)
	for i := range 26 {
		VPXORD(zmm[i], zmm[i], zmm[i])
	}
	Label("peakdp_loop")
	for i := range 24 {
		vdpbf16ps(Z24, Z25, zmm[i])
	}
	DECQ(RAX)
	JNZ(LabelRef("peakdp_loop"))
	VZEROUPPER()
	RET()
}

// peakAMX emits 4 TDPBF16PS per iteration into four accumulator tiles
// from four source tiles (zero after LDTILECFG).
func peakAMX() {
	TEXT("peakAMX", NOSPLIT, "func(n int, cfg *byte)")
	Doc("peakAMX runs n iterations of 4 independent TDPBF16PS (16×16×32 each); cfg is the tile configuration.")
	Load(Param("n"), RAX)
	Load(Param("cfg"), RBX)
	ldtilecfg(RBX)
	Label("peakamx_loop")
	tdpbf16ps(4, 6, 0)
	tdpbf16ps(4, 7, 1)
	tdpbf16ps(5, 6, 2)
	tdpbf16ps(5, 7, 3)
	DECQ(RAX)
	JNZ(LabelRef("peakamx_loop"))
	tilerelease()
	RET()
}
