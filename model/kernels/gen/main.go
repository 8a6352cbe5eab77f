package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/gotypes"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!noasm")
	microKernel("gemmKernel6x16AVX2", 6, 2, 32, YMM)
	microKernel("gemmKernel14x32AVX512", 14, 2, 64, ZMM)
	packGather()
	packCopy()
	packRows()
	packRows32()
	packTrans16(14)
	packTrans16(32)
	packTrans8(6)
	packTrans8(16)
	rowKernels()
	rowKernelsAVX2()
	adamw()
	adamwAVX2()
	matvec4()
	bf16Kernels()
	ropeRows()
	peakLoops()
	Generate()
}

// microKernel emits a kernel of mr rows and nv vectors of vecBytes per row.
func microKernel(name string, mr, nv, vecBytes int, newVec func() VecVirtual) {
	nr := nv * vecBytes / 4
	TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int, beta float32)")
	Doc(fmt.Sprintf("%s computes one %d×%d tile of C from packed slivers a (k×%d) and b (k×%d):", name, mr, nr, mr, nr),
		"",
		fmt.Sprintf("\tc[i·ldc+j] = Σ_p a[p·%d+i]·b[p·%d+j] + beta·c[i·ldc+j]   (beta == 0: c is not read)", mr, nr))
	k := Load(Param("k"), GP64())
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)

	// Prefetch the tile of C: it is read (or written) at the end.
	row := GP64()
	MOVQ(pc, row)
	for i := 0; i < mr; i++ {
		PREFETCHT0(Mem{Base: row})
		PREFETCHT0(Mem{Base: row, Disp: nr*4 - 4})
		ADDQ(ldc, row)
	}

	acc := make([][]VecVirtual, mr)
	for i := range acc {
		acc[i] = make([]VecVirtual, nv)
		for v := range acc[i] {
			acc[i][v] = newVec()
			if vecBytes == 64 {
				VPXORD(acc[i][v], acc[i][v], acc[i][v])
			} else {
				VXORPS(acc[i][v], acc[i][v], acc[i][v])
			}
		}
	}
	bv := make([]VecVirtual, nv)
	for v := range bv {
		bv[v] = newVec()
	}
	av := newVec()

	step := func(u int) {
		for v := 0; v < nv; v++ {
			VMOVUPS(Mem{Base: pb, Disp: u*nr*4 + v*vecBytes}, bv[v])
		}
		for i := 0; i < mr; i++ {
			VBROADCASTSS(Mem{Base: pa, Disp: (u*mr + i) * 4}, av)
			for v := 0; v < nv; v++ {
				VFMADD231PS(bv[v], av, acc[i][v])
			}
		}
	}

	const unroll = 4
	Label(name + "_loop4")
	CMPQ(k, U8(unroll))
	JL(LabelRef(name + "_tail"))
	for u := 0; u < unroll; u++ {
		step(u)
	}
	ADDQ(U32(unroll*mr*4), pa)
	ADDQ(U32(unroll*nr*4), pb)
	SUBQ(U8(unroll), k)
	JMP(LabelRef(name + "_loop4"))

	Label(name + "_tail")
	TESTQ(k, k)
	JE(LabelRef(name + "_store"))
	step(0)
	ADDQ(U32(mr*4), pa)
	ADDQ(U32(nr*4), pb)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))

	Label(name + "_store")
	beta := GP32()
	betaAddr := mustResolve(Param("beta")).Addr
	MOVL(betaAddr, beta)
	TESTL(U32(0x7fffffff), beta)
	JE(LabelRef(name + "_overwrite"))

	// c = acc + beta·c
	vbeta := bv[0]
	VBROADCASTSS(betaAddr, vbeta)
	MOVQ(pc, row)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			VFMADD231PS(Mem{Base: row, Disp: v * vecBytes}, vbeta, acc[i][v])
			VMOVUPS(acc[i][v], Mem{Base: row, Disp: v * vecBytes})
		}
		ADDQ(ldc, row)
	}
	VZEROUPPER()
	RET()

	// c = acc
	Label(name + "_overwrite")
	MOVQ(pc, row)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			VMOVUPS(acc[i][v], Mem{Base: row, Disp: v * vecBytes})
		}
		ADDQ(ldc, row)
	}
	VZEROUPPER()
	RET()
}

func mustResolve(c gotypes.Component) *gotypes.Basic {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b
}

// packGather emits the AVX-512 transposing packer: 16 rows of a matrix
// stored with k along its rows become k-major groups of 16 lanes.
func packGather() {
	TEXT("packGatherAVX512", NOSPLIT, "func(dst *float32, dstStride int, src *float32, ld int32, kc int, load, store uint32, scale float32)")
	Doc("packGatherAVX512 packs up to 16 rows (load mask) of src into k-major groups:",
		"",
		"\tfor p < kc, lanes r of store: dst[p·dstStride + r] = scale·src[r·ld + p] if r is in load, else 0")
	dst := Load(Param("dst"), GP64())
	stride := Load(Param("dstStride"), GP64())
	SHLQ(U8(2), stride)
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP32())
	kc := Load(Param("kc"), GP64())
	load := Load(Param("load"), GP32())
	store := Load(Param("store"), GP32())

	iota := GLOBL("packIota", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(i))
	}
	zld := ZMM()
	VPBROADCASTD(ld, zld)
	idx := ZMM()
	VPMULLD(iota, zld, idx)
	zscale := ZMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, zscale)
	kstore := K()
	KMOVW(store, kstore)

	const unroll = 4
	Label("pg_loop4")
	CMPQ(kc, U8(unroll))
	JL(LabelRef("pg_tail"))
	vals := make([]VecVirtual, unroll)
	for u := range vals {
		vals[u] = ZMM()
		kl := K()
		KMOVW(load, kl)
		VPXORD(vals[u], vals[u], vals[u])
		VGATHERDPS(Mem{Base: src, Index: idx, Scale: 4, Disp: 4 * u}, kl, vals[u])
	}
	for u := range vals {
		VMULPS(zscale, vals[u], vals[u])
		VMOVUPS(vals[u], kstore, Mem{Base: dst})
		ADDQ(stride, dst)
	}
	ADDQ(U8(4*unroll), src)
	SUBQ(U8(unroll), kc)
	JMP(LabelRef("pg_loop4"))

	Label("pg_tail")
	TESTQ(kc, kc)
	JE(LabelRef("pg_done"))
	v := ZMM()
	kl := K()
	KMOVW(load, kl)
	VPXORD(v, v, v)
	VGATHERDPS(Mem{Base: src, Index: idx, Scale: 4}, kl, v)
	VMULPS(zscale, v, v)
	VMOVUPS(v, kstore, Mem{Base: dst})
	ADDQ(stride, dst)
	ADDQ(U8(4), src)
	DECQ(kc)
	JMP(LabelRef("pg_tail"))

	Label("pg_done")
	VZEROUPPER()
	RET()
}

// packCopy emits the AVX-512 contiguous packer: groups of up to 16 values
// of each row of a matrix stored with k down its columns.
func packCopy() {
	TEXT("packCopyAVX512", NOSPLIT, "func(dst *float32, dstStride int, src *float32, ld int, kc int, load, store uint32, scale float32)")
	Doc("packCopyAVX512 packs up to 16 columns (load mask) of src into k-major groups:",
		"",
		"\tfor p < kc, lanes r of store: dst[p·dstStride + r] = scale·src[p·ld + r] if r is in load, else 0")
	dst := Load(Param("dst"), GP64())
	stride := Load(Param("dstStride"), GP64())
	SHLQ(U8(2), stride)
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	kc := Load(Param("kc"), GP64())
	load := Load(Param("load"), GP32())
	store := Load(Param("store"), GP32())
	zscale := ZMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, zscale)
	kload, kstore := K(), K()
	KMOVW(load, kload)
	KMOVW(store, kstore)

	Label("pc_loop")
	TESTQ(kc, kc)
	JE(LabelRef("pc_done"))
	v := ZMM()
	VMOVUPS_Z(Mem{Base: src}, kload, v)
	VMULPS(zscale, v, v)
	VMOVUPS(v, kstore, Mem{Base: dst})
	ADDQ(stride, dst)
	ADDQ(ld, src)
	DECQ(kc)
	JMP(LabelRef("pc_loop"))

	Label("pc_done")
	VZEROUPPER()
	RET()
}

// packRows emits the AVX-512 packer of a row block stored with k down its
// columns into several micro-panels at once, reading each source row once.
func packRows() {
	TEXT("packRowsAVX512", NOSPLIT, "func(dst *float32, src *float32, ld int, kc int, panels int, w int, mask uint32, scale float32)")
	Doc("packRowsAVX512 packs panels·w columns (w ≤ 16, mask = 1<<w − 1) of src into panels of w:",
		"",
		"\tfor p < kc, q < panels, r < w: dst[q·kc·w + p·w + r] = scale·src[p·ld + q·w + r]")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	kc := Load(Param("kc"), GP64())
	panels := Load(Param("panels"), GP64())
	w := Load(Param("w"), GP64())
	SHLQ(U8(2), w)
	mask := Load(Param("mask"), GP32())
	pstride := GP64()
	MOVQ(kc, pstride)
	IMULQ(w, pstride) // kc·w·4 bytes
	zscale := ZMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, zscale)
	k := K()
	KMOVW(mask, k)
	s, d, q := GP64(), GP64(), GP64()

	Label("pr_row")
	TESTQ(kc, kc)
	JE(LabelRef("pr_done"))
	MOVQ(src, s)
	MOVQ(dst, d)
	MOVQ(panels, q)
	Label("pr_panel")
	v := ZMM()
	VMOVUPS_Z(Mem{Base: s}, k, v)
	VMULPS(zscale, v, v)
	VMOVUPS(v, k, Mem{Base: d})
	ADDQ(w, s)
	ADDQ(pstride, d)
	DECQ(q)
	JNZ(LabelRef("pr_panel"))
	ADDQ(ld, src)
	ADDQ(w, dst)
	DECQ(kc)
	JMP(LabelRef("pr_row"))

	Label("pr_done")
	VZEROUPPER()
	RET()
}

// packTrans16 emits a transposing packer for panels of width w: blocks of
// 16 rows × 16 k values are loaded with 16 full-width loads, transposed in
// registers (unpack 32-bit, unpack 64-bit, two 128-bit lane shuffles) and
// stored as 16 k-major groups; cheaper than one gather per k.
func packTrans16(w int) {
	name := fmt.Sprintf("packTrans16W%d", w)
	TEXT(name, NOSPLIT, "func(dst *float32, src *float32, ld int, blocks int, store uint32, scale float32)")
	Doc(name+" packs 16 rows of src (row stride ld) into k-major groups of stride "+fmt.Sprint(w)+":",
		"",
		fmt.Sprintf("\tfor p < 16·blocks, lanes r of store: dst[p·%d + r] = scale·src[r·ld + p]", w),
		"",
		"All 16 rows must be readable; lanes outside store are not written.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	l3 := GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, l3)
	blocks := Load(Param("blocks"), GP64())
	store := Load(Param("store"), GP32())
	k := K()
	KMOVW(store, k)
	zscale := ZMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, zscale)
	base := [4]GPVirtual{src.(GPVirtual), GP64(), GP64(), GP64()}
	for i := 1; i < 4; i++ {
		LEAQ(Mem{Base: base[i-1], Index: ld, Scale: 4}, base[i])
	}
	rowMem := func(r int) Mem {
		b := base[r/4]
		switch r % 4 {
		case 0:
			return Mem{Base: b}
		case 1:
			return Mem{Base: b, Index: ld, Scale: 1}
		case 2:
			return Mem{Base: b, Index: ld, Scale: 2}
		}
		return Mem{Base: b, Index: l3, Scale: 1}
	}

	Label(name + "_loop")
	TESTQ(blocks, blocks)
	JE(LabelRef(name + "_done"))
	r := make([]VecVirtual, 16)
	for i := range r {
		r[i] = ZMM()
		VMULPS(rowMem(i), zscale, r[i])
	}
	t := make([]VecVirtual, 16)
	for i := 0; i < 8; i++ {
		t[2*i], t[2*i+1] = ZMM(), ZMM()
		VUNPCKLPS(r[2*i+1], r[2*i], t[2*i])
		VUNPCKHPS(r[2*i+1], r[2*i], t[2*i+1])
	}
	u := make([]VecVirtual, 16)
	for g := 0; g < 4; g++ {
		b := 4 * g
		for i := 0; i < 4; i++ {
			u[b+i] = ZMM()
		}
		VUNPCKLPD(t[b+2], t[b+0], u[b+0])
		VUNPCKHPD(t[b+2], t[b+0], u[b+1])
		VUNPCKLPD(t[b+3], t[b+1], u[b+2])
		VUNPCKHPD(t[b+3], t[b+1], u[b+3])
	}
	v := make([]VecVirtual, 16)
	for h := 0; h < 2; h++ {
		b := 8 * h
		for i := 0; i < 4; i++ {
			v[b+i], v[b+4+i] = ZMM(), ZMM()
			VSHUFF32X4(U8(0x88), u[b+4+i], u[b+i], v[b+i])
			VSHUFF32X4(U8(0xdd), u[b+4+i], u[b+i], v[b+4+i])
		}
	}
	for i := 0; i < 8; i++ {
		lo, hi := ZMM(), ZMM()
		VSHUFF32X4(U8(0x88), v[8+i], v[i], lo)
		VSHUFF32X4(U8(0xdd), v[8+i], v[i], hi)
		VMOVUPS(lo, k, Mem{Base: dst, Disp: i * w * 4})
		VMOVUPS(hi, k, Mem{Base: dst, Disp: (8 + i) * w * 4})
	}
	for i := range base {
		ADDQ(U8(64), base[i])
	}
	ADDQ(U32(16*w*4), dst)
	DECQ(blocks)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// packTrans8 emits the AVX2 transposing packer for panels of width w (6 or
// 16): blocks of 8 rows × 8 k values, transposed in registers (unpack,
// shufps, vperm2f128) and stored as 8 k-major groups of the first
// min(w, 8) lanes.
func packTrans8(w int) {
	name := fmt.Sprintf("packTrans8W%d", w)
	TEXT(name, NOSPLIT, "func(dst *float32, src *float32, ld int, blocks int, scale float32)")
	lanes := min(w, 8)
	Doc(name+" packs 8 rows of src (row stride ld) into k-major groups of stride "+fmt.Sprint(w)+":",
		"",
		fmt.Sprintf("\tfor p < 8·blocks, r < %d: dst[p·%d + r] = scale·src[r·ld + p]", lanes, w),
		"",
		"All 8 rows must be readable.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	l3 := GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, l3)
	blocks := Load(Param("blocks"), GP64())
	scale := YMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, scale)
	var mask VecVirtual
	if lanes < 8 {
		mask = YMM()
		m := GLOBL(fmt.Sprintf("storeMask%d", lanes), RODATA|NOPTR)
		for i := 0; i < 8; i++ {
			v := uint32(0)
			if i < lanes {
				v = 0xffffffff
			}
			DATA(4*i, U32(v))
		}
		VMOVUPS(m, mask)
	}
	b4 := GP64()
	LEAQ(Mem{Base: src, Index: ld, Scale: 4}, b4)
	rowMem := func(r int) Mem {
		b := src
		if r >= 4 {
			b = b4
		}
		switch r % 4 {
		case 0:
			return Mem{Base: b}
		case 1:
			return Mem{Base: b, Index: ld, Scale: 1}
		case 2:
			return Mem{Base: b, Index: ld, Scale: 2}
		}
		return Mem{Base: b, Index: l3, Scale: 1}
	}

	Label(name + "_loop")
	TESTQ(blocks, blocks)
	JE(LabelRef(name + "_done"))
	r := make([]VecVirtual, 8)
	for i := range r {
		r[i] = YMM()
		VMULPS(rowMem(i), scale, r[i])
	}
	t := make([]VecVirtual, 8)
	for i := 0; i < 4; i++ {
		t[2*i], t[2*i+1] = YMM(), YMM()
		VUNPCKLPS(r[2*i+1], r[2*i], t[2*i])
		VUNPCKHPS(r[2*i+1], r[2*i], t[2*i+1])
	}
	u := make([]VecVirtual, 8)
	for h := 0; h < 2; h++ {
		b := 4 * h
		for i := 0; i < 4; i++ {
			u[b+i] = YMM()
		}
		VSHUFPS(U8(0x44), t[b+2], t[b+0], u[b+0])
		VSHUFPS(U8(0xee), t[b+2], t[b+0], u[b+1])
		VSHUFPS(U8(0x44), t[b+3], t[b+1], u[b+2])
		VSHUFPS(U8(0xee), t[b+3], t[b+1], u[b+3])
	}
	for i := 0; i < 4; i++ {
		lo, hi := YMM(), YMM()
		VPERM2F128(U8(0x20), u[4+i], u[i], lo)
		VPERM2F128(U8(0x31), u[4+i], u[i], hi)
		for _, o := range []struct {
			v VecVirtual
			p int
		}{{lo, i}, {hi, 4 + i}} {
			dm := Mem{Base: dst, Disp: o.p * w * 4}
			if mask != nil {
				VMASKMOVPS(o.v, mask, dm)
			} else {
				VMOVUPS(o.v, dm)
			}
		}
	}
	ADDQ(U8(32), src)
	ADDQ(U8(32), b4)
	ADDQ(U32(8*w*4), dst)
	DECQ(blocks)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// packRows32 emits packRows for panels of 32 columns (two full vectors).
func packRows32() {
	TEXT("packRows32AVX512", NOSPLIT, "func(dst *float32, src *float32, ld int, kc int, panels int, scale float32)")
	Doc("packRows32AVX512 packs panels·32 columns of src into panels of 32:",
		"",
		"\tfor p < kc, q < panels, r < 32: dst[q·kc·32 + p·32 + r] = scale·src[p·ld + q·32 + r]")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	kc := Load(Param("kc"), GP64())
	panels := Load(Param("panels"), GP64())
	pstride := GP64()
	MOVQ(kc, pstride)
	SHLQ(U8(7), pstride) // kc·32·4 bytes
	zscale := ZMM()
	VBROADCASTSS(mustResolve(Param("scale")).Addr, zscale)
	s, d, q := GP64(), GP64(), GP64()

	Label("pr32_row")
	TESTQ(kc, kc)
	JE(LabelRef("pr32_done"))
	MOVQ(src, s)
	MOVQ(dst, d)
	MOVQ(panels, q)
	Label("pr32_panel")
	v0, v1 := ZMM(), ZMM()
	VMULPS(Mem{Base: s}, zscale, v0)
	VMULPS(Mem{Base: s, Disp: 64}, zscale, v1)
	VMOVUPS(v0, Mem{Base: d})
	VMOVUPS(v1, Mem{Base: d, Disp: 64})
	ADDQ(U8(128), s)
	ADDQ(pstride, d)
	DECQ(q)
	JNZ(LabelRef("pr32_panel"))
	ADDQ(ld, src)
	ADDQ(U8(128), dst)
	DECQ(kc)
	JMP(LabelRef("pr32_row"))

	Label("pr32_done")
	VZEROUPPER()
	RET()
}
