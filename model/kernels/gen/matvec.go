package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// matvec4 emits matvec4AVX2, the kernel of MatVec (the one-token decode
// step): partial dot products of one vector with four consecutive rows of
// a row-major matrix, eight lanes per row,
//
//	sums[r·8+l] = Σ_{p ≡ l mod 8, p < k} x[p]·w[r·ldw+p]   for r < 4, l < 8
//
// with k a positive multiple of 16; the caller adds the lanes and the tail.
func matvec4() {
	TEXT("matvec4AVX2", NOSPLIT, "func(k int, x, w *float32, ldw int, sums *[32]float32)")
	Pragma("noescape")
	Doc("matvec4AVX2 computes eight-lane partial dot products of x with four rows of w:",
		"",
		"\tsums[r·8+l] = Σ_{p ≡ l mod 8, p < k} x[p]·w[r·ldw+p]   for r < 4, l < 8",
		"",
		"k must be a positive multiple of 16.")
	k := Load(Param("k"), GP64())
	px := Load(Param("x"), GP64())
	pw := Load(Param("w"), GP64())
	ldw := Load(Param("ldw"), GP64())
	ps := Load(Param("sums"), GP64())
	SHLQ(U8(2), ldw)
	rows := make([]Register, 4)
	rows[0] = pw
	for r := 1; r < 4; r++ {
		rows[r] = GP64()
		MOVQ(rows[r-1], rows[r])
		ADDQ(ldw, rows[r])
	}
	acc := make([][2]VecVirtual, 4)
	for r := range acc {
		for v := range acc[r] {
			acc[r][v] = YMM()
			VXORPS(acc[r][v], acc[r][v], acc[r][v])
		}
	}
	x0, x1 := YMM(), YMM()
	Label("matvec4_loop")
	VMOVUPS(Mem{Base: px}, x0)
	VMOVUPS(Mem{Base: px, Disp: 32}, x1)
	for r := range acc {
		VFMADD231PS(Mem{Base: rows[r]}, x0, acc[r][0])
		VFMADD231PS(Mem{Base: rows[r], Disp: 32}, x1, acc[r][1])
	}
	ADDQ(U8(64), px)
	for r := range rows {
		ADDQ(U8(64), rows[r])
	}
	SUBQ(U8(16), k)
	JNZ(LabelRef("matvec4_loop"))

	for r := range acc {
		VADDPS(acc[r][1], acc[r][0], acc[r][0])
		VMOVUPS(acc[r][0], Mem{Base: ps, Disp: 32 * r})
	}
	VZEROUPPER()
	RET()
}
