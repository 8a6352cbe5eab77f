package main

import (
	"fmt"
	"sync"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The bfloat16 kernels (see gemm_bf16.go for the packed layout). Neither
// Go's assembler nor avo knows AVX512_BF16 or AMX, so those instructions
// are written as bytes (raw) for registers fixed here. The functions that
// contain them use physical registers only: nothing avo allocates can then
// collide with a register the bytes name. Each encoding is checked against
// a known result by the tests of package kernels.

// raw emits code bytes, after a comment that spells the instruction the
// way the Go assembler would (sources first).
func raw(asm string, code ...byte) {
	Comment(asm)
	for _, c := range code {
		Instruction(&ir.Instruction{Opcode: "BYTE", Operands: []Op{U8(c)}})
	}
}

func idx(r Physical) byte { return byte(r.PhysicalIndex()) }

// evex512 emits EVEX.512.<pp>.0F38.W0 <op> /r with register operands
// modrm.reg = d, vvvv = v, modrm.rm = m (pp: 1 = 66, 2 = F3, 3 = F2).
func evex512(name string, pp, op byte, m, v, d VecPhysical) {
	dn, vn, mn := idx(d), idx(v), idx(m)
	p0 := (^dn>>3&1)<<7 | (^mn>>4&1)<<6 | (^mn>>3&1)<<5 | (^dn>>4&1)<<4 | 0b0010
	p1 := (^vn&15)<<3 | 0b100 | pp
	p2 := byte(0b10<<5) | (^vn>>4&1)<<3
	raw(fmt.Sprintf("%s %s, %s, %s", name, m.Asm(), v.Asm(), d.Asm()), 0x62, p0, p1, p2, op, 0xc0|(dn&7)<<3|mn&7)
}

// vdpbf16ps: acc.fp32[i] += a.bf16[2i]·b.bf16[2i] + a.bf16[2i+1]·b.bf16[2i+1].
func vdpbf16ps(b, a, acc VecPhysical) { evex512("VDPBF16PS", 2, 0x52, b, a, acc) }

// vcvtne2ps2bf16: dst.bf16[0:16] = bf16(lo.fp32[0:16]), dst.bf16[16:32] = bf16(hi.fp32[0:16]).
func vcvtne2ps2bf16(lo, hi, dst VecPhysical) { evex512("VCVTNE2PS2BF16", 3, 0x72, lo, hi, dst) }

// vcvtneps2bf16: dst.bf16[0:16] = bf16(src.fp32[0:16]) (dst is the YMM of the ZMM given).
func vcvtneps2bf16(src, dst VecPhysical) {
	sn, dn := idx(src), idx(dst)
	p0 := (^dn>>3&1)<<7 | (^sn>>4&1)<<6 | (^sn>>3&1)<<5 | (^dn>>4&1)<<4 | 0b0010
	raw(fmt.Sprintf("VCVTNEPS2BF16 %s, Y%d", src.Asm(), dn), 0x62, p0, 0b01111110, 0b01001000, 0x72, 0xc0|(dn&7)<<3|sn&7)
}

// vex3 emits a VEX.128.<pp>.0F38.W0 AMX instruction (vvvv unused, 1111).
func vex3(asm string, pp, op byte, tail ...byte) {
	raw(asm, append([]byte{0xc4, 0xe2, 0x78 | pp, op}, tail...)...)
}

// sibmem encodes [base + index·1 + disp32] for modrm.reg = r.
func sibmem(r byte, base, index GPPhysical, disp int32) (rex byte, rest []byte) {
	bn, xn := idx(base), idx(index)
	rex = (^xn>>3&1)<<6 | (^bn>>3&1)<<5 // the X̄ and B̄ bits of the VEX prefix
	d := uint32(disp)
	return rex, []byte{0x80 | r<<3 | 4, (xn&7)<<3 | bn&7, byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)}
}

// tileMem emits a TILELOADD (op 0x4b, F2) or TILESTORED (0x4b, F3).
func tileMem(asm string, pp byte, t int, base, index GPPhysical, disp int32) {
	rex, rest := sibmem(byte(t), base, index, disp)
	raw(asm, append([]byte{0xc4, 0x80 | rex | 0b00010, 0x78 | pp, 0x4b}, rest...)...)
}

func tileload(t int, base, stride GPPhysical, disp int32) {
	tileMem(fmt.Sprintf("TILELOADD %d(%s)(%s*1), TMM%d", disp, base.Asm(), stride.Asm(), t), 3, t, base, stride, disp)
}

func tilestore(t int, base, stride GPPhysical, disp int32) {
	tileMem(fmt.Sprintf("TILESTORED TMM%d, %d(%s)(%s*1)", t, disp, base.Asm(), stride.Asm()), 2, t, base, stride, disp)
}

func tilezero(t int) { vex3(fmt.Sprintf("TILEZERO TMM%d", t), 3, 0x49, 0xc0|byte(t)<<3) }

func tilerelease() { vex3("TILERELEASE", 0, 0x49, 0xc0) }

// ldtilecfg loads the 64-byte tile configuration at [base].
func ldtilecfg(base GPPhysical) {
	bn := idx(base)
	raw(fmt.Sprintf("LDTILECFG (%s)", base.Asm()),
		0xc4, 0x80|0b01000000|(^bn>>3&1)<<5|0b00010, 0x78, 0x49, 0x04, 0x20|bn&7)
}

// tdpbf16ps: c += a·b on tiles (a 16×32 bf16, b 16×(16 pairs), c 16×16 fp32).
func tdpbf16ps(a, b, c int) {
	raw(fmt.Sprintf("TDPBF16PS TMM%d, TMM%d, TMM%d", b, a, c),
		0xc4, 0xe2, byte(^b&15)<<3|0b010, 0x5c, 0xc0|byte(c)<<3|byte(a))
}

var zmm = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}

func bf16Kernels() {
	amxStrip()
	dpStrip()
	packAlongBF16()
	packAlongTBF16()
	packPairsBF16()
	packPairsTBF16()
	roundBF16AVX2()
	roundBF16AVX512()
}

const stripDoc = "\tfor r, j < 32, q < panels: c[r·ldc + 32q + j] = Σ_{p < 32·ks} a[r, p]·b[q·pstride + …][p, j] (+ c[…] if acc ≠ 0)"

// amxStrip emits the AMX strip kernel: per panel four C tiles (rows 0–15
// and 16–31 × columns 0–15 and 16–31), per k step two A tiles (64-byte
// rows, contiguous) and two B tiles (the two halves of 128-byte panel
// rows), four TDPBF16PS.
func amxStrip() {
	TEXT("amxStripBF16", NOSPLIT, "func(ks int, a, b *uint16, panels, pstride int, c *float32, ldc int, acc int, cfg *byte)")
	Doc("amxStripBF16 computes a 32 × 32·panels strip of C from a packed A strip and B panels (pstride in bytes) on AMX tiles:",
		"", stripDoc, "", "cfg is the tile configuration (all tiles 16 rows × 64 bytes).")
	Load(Param("ks"), RAX)
	Load(Param("a"), RSI)
	Load(Param("b"), RDI)
	Load(Param("panels"), R8)
	Load(Param("pstride"), R9)
	Load(Param("c"), RDX)
	Load(Param("ldc"), R10)
	SHLQ(U8(2), R10)
	Load(Param("cfg"), RBX)
	ldtilecfg(RBX)
	MOVQ(U32(64), RCX)  // A tile row stride
	MOVQ(U32(128), R12) // B tile row stride
	acc := mustResolve(Param("acc")).Addr

	Label("amx_panel")
	MOVQ(R10, R13)
	SHLQ(U8(4), R13)
	ADDQ(RDX, R13) // C row 16
	CMPQ(acc, U8(0))
	JE(LabelRef("amx_zero"))
	tileload(0, RDX, R10, 0)
	tileload(1, RDX, R10, 64)
	tileload(2, R13, R10, 0)
	tileload(3, R13, R10, 64)
	JMP(LabelRef("amx_k0"))
	Label("amx_zero")
	for t := range 4 {
		tilezero(t)
	}
	Label("amx_k0")
	MOVQ(RSI, R13)
	MOVQ(RDI, R11)
	MOVQ(RAX, RBX)
	Label("amx_k")
	tileload(4, R13, RCX, 0)
	tileload(5, R13, RCX, 1024)
	tileload(6, R11, R12, 0)
	tileload(7, R11, R12, 64)
	tdpbf16ps(4, 6, 0)
	tdpbf16ps(4, 7, 1)
	tdpbf16ps(5, 6, 2)
	tdpbf16ps(5, 7, 3)
	ADDQ(U32(2048), R13)
	ADDQ(U32(2048), R11)
	DECQ(RBX)
	JNZ(LabelRef("amx_k"))
	MOVQ(R10, R13)
	SHLQ(U8(4), R13)
	ADDQ(RDX, R13)
	tilestore(0, RDX, R10, 0)
	tilestore(1, RDX, R10, 64)
	tilestore(2, R13, R10, 0)
	tilestore(3, R13, R10, 64)
	ADDQ(U32(128), RDX)
	ADDQ(R9, RDI)
	DECQ(R8)
	JNZ(LabelRef("amx_panel"))
	tilerelease()
	RET()
}

// dpStrip emits the VDPBF16PS strip kernel: per panel, four groups of 8
// rows × 32 columns in Z0–Z15; per pair of k one 128-byte row of B
// (Z16, Z17) and eight broadcast pairs of A (Z18–Z25 in turn).
func dpStrip() {
	TEXT("dpStripBF16", NOSPLIT, "func(ks int, a, b *uint16, panels, pstride int, c *float32, ldc int, acc int)")
	Doc("dpStripBF16 computes a 32 × 32·panels strip of C from a packed A strip and B panels (pstride in bytes) with VDPBF16PS:",
		"", stripDoc)
	ksAddr := mustResolve(Param("ks")).Addr
	Load(Param("a"), RSI)
	Load(Param("b"), RDI)
	Load(Param("panels"), R8)
	Load(Param("pstride"), R9)
	Load(Param("c"), RDX)
	Load(Param("ldc"), R10)
	SHLQ(U8(2), R10)
	acc := mustResolve(Param("acc")).Addr

	Label("dp_panel")
	MOVQ(RSI, R11) // A rows of the group
	MOVQ(RDX, R12) // C rows of the group
	MOVQ(U32(4), R13)
	Label("dp_group")
	for i := range 16 {
		VPXORD(zmm[i], zmm[i], zmm[i])
	}
	MOVQ(R11, RCX)
	MOVQ(RDI, RBX)
	MOVQ(ksAddr, RAX)
	Label("dp_k")
	for u := range 16 {
		VMOVDQU32(Mem{Base: RBX, Disp: u * 128}, Z16)
		VMOVDQU32(Mem{Base: RBX, Disp: u*128 + 64}, Z17)
		for r := range 8 {
			a := zmm[18+r]
			VPBROADCASTD(Mem{Base: RCX, Disp: r*64 + u*4}, a)
			vdpbf16ps(Z16, a, zmm[2*r])
			vdpbf16ps(Z17, a, zmm[2*r+1])
		}
	}
	ADDQ(U32(2048), RCX)
	ADDQ(U32(2048), RBX)
	DECQ(RAX)
	JNZ(LabelRef("dp_k"))
	MOVQ(R12, RCX)
	CMPQ(acc, U8(0))
	JE(LabelRef("dp_store"))
	for r := range 8 {
		VADDPS(Mem{Base: RCX}, zmm[2*r], zmm[2*r])
		VADDPS(Mem{Base: RCX, Disp: 64}, zmm[2*r+1], zmm[2*r+1])
		ADDQ(R10, RCX)
	}
	MOVQ(R12, RCX)
	Label("dp_store")
	for r := range 8 {
		VMOVUPS(zmm[2*r], Mem{Base: RCX})
		VMOVUPS(zmm[2*r+1], Mem{Base: RCX, Disp: 64})
		ADDQ(R10, RCX)
	}
	MOVQ(RCX, R12)
	ADDQ(U32(8*64), R11)
	DECQ(R13)
	JNZ(LabelRef("dp_group"))
	ADDQ(U32(128), RDX)
	ADDQ(R9, RDI)
	DECQ(R8)
	JNZ(LabelRef("dp_panel"))
	VZEROUPPER()
	RET()
}

// loadTail sets K1 and K2 to the low and high 16 lanes of the 32-lane mask at m.
func loadTail(m Mem) {
	MOVL(m, EAX)
	KMOVW(EAX, K1)
	SHRL(U8(16), EAX)
	KMOVW(EAX, K2)
}

// cvt32 converts the 32 floats at m (masked by K1 and K2 if masked) times
// Z31 into 32 bfloat16 in dst, using Z16 and Z17.
func cvt32(m Mem, masked bool, dst VecPhysical) {
	hi := m
	hi.Disp += 64
	if masked {
		VMOVUPS_Z(m, K1, Z16)
		VMOVUPS_Z(hi, K2, Z17)
		VMULPS(Z31, Z16, Z16)
		VMULPS(Z31, Z17, Z17)
	} else {
		VMULPS(m, Z31, Z16)
		VMULPS(hi, Z31, Z17)
	}
	vcvtne2ps2bf16(Z16, Z17, dst)
}

// packAlongBF16 emits the packer of A strips from rows with k contiguous.
func packAlongBF16() {
	TEXT("packAlongBF16", NOSPLIT, "func(dst *uint16, src *float32, ld int, rows int, steps int, tail uint32, scale float32)")
	Doc("packAlongBF16 packs rows of src (k contiguous) into an A strip, steps of 32 values and, if tail ≠ 0, one step of the values in tail's lanes:",
		"",
		"\tfor r < rows, s < steps(+1), t < 32: dst[s·1024 + r·32 + t] = bf16(scale·src[r·ld + 32s + t])   (0 outside tail)")
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("ld"), RDX)
	SHLQ(U8(2), RDX)
	Load(Param("rows"), RCX)
	Load(Param("steps"), RBX)
	VBROADCASTSS(mustResolve(Param("scale")).Addr, Z31)
	loadTail(mustResolve(Param("tail")).Addr)

	Label("pab_row")
	TESTQ(RCX, RCX)
	JE(LabelRef("pab_done"))
	MOVQ(RSI, R8)
	MOVQ(RDI, R9)
	MOVQ(RBX, R10)
	Label("pab_step")
	TESTQ(R10, R10)
	JE(LabelRef("pab_tail"))
	cvt32(Mem{Base: R8}, false, Z0)
	VMOVDQU32(Z0, Mem{Base: R9})
	ADDQ(U32(128), R8)
	ADDQ(U32(2048), R9)
	DECQ(R10)
	JMP(LabelRef("pab_step"))
	Label("pab_tail")
	KORTESTW(K1, K1)
	JE(LabelRef("pab_next"))
	cvt32(Mem{Base: R8}, true, Z0)
	VMOVDQU32(Z0, Mem{Base: R9})
	Label("pab_next")
	ADDQ(RDX, RSI)
	ADDQ(U32(64), RDI)
	DECQ(RCX)
	JMP(LabelRef("pab_row"))

	Label("pab_done")
	VZEROUPPER()
	RET()
}

// transpose16 transposes the 16×16 matrix of 32-bit values whose rows are
// in regs (rows r of the result replace them in order), with one spare
// register; each stage turns a pair of inputs into a pair of outputs in the
// spare and the second input, whose first input becomes the next spare.
// The stages are those of packTrans16: unpack 32-bit, unpack 64-bit, two
// 128-bit lane shuffles.
func transpose16(regs []VecPhysical, spare VecPhysical) []VecPhysical {
	r := append([]VecPhysical(nil), regs...)
	pair := func(a, b int, lo, hi func(x, y, d VecPhysical)) (VecPhysical, VecPhysical) {
		x, y := r[a], r[b]
		lo(y, x, spare)
		hi(y, x, y)
		out0 := spare
		spare = x
		return out0, y
	}
	unpckl := func(y, x, d VecPhysical) { VUNPCKLPS(y, x, d) }
	unpckh := func(y, x, d VecPhysical) { VUNPCKHPS(y, x, d) }
	unpcklq := func(y, x, d VecPhysical) { VUNPCKLPD(y, x, d) }
	unpckhq := func(y, x, d VecPhysical) { VUNPCKHPD(y, x, d) }
	shufLo := func(y, x, d VecPhysical) { VSHUFF32X4(U8(0x88), y, x, d) }
	shufHi := func(y, x, d VecPhysical) { VSHUFF32X4(U8(0xdd), y, x, d) }

	t := make([]VecPhysical, 16)
	for i := range 8 {
		t[2*i], t[2*i+1] = pair(2*i, 2*i+1, unpckl, unpckh)
	}
	r = t
	u := make([]VecPhysical, 16)
	for g := range 4 {
		b := 4 * g
		// u[b], u[b+1] from t[b], t[b+2]; u[b+2], u[b+3] from t[b+1], t[b+3]
		u[b], u[b+1] = pair(b, b+2, unpcklq, unpckhq)
		u[b+2], u[b+3] = pair(b+1, b+3, unpcklq, unpckhq)
	}
	r = u
	v := make([]VecPhysical, 16)
	for h := range 2 {
		b := 8 * h
		for i := range 4 {
			v[b+i], v[b+4+i] = pair(b+i, b+4+i, shufLo, shufHi)
		}
	}
	r = v
	out := make([]VecPhysical, 16)
	for i := range 8 {
		out[i], out[8+i] = pair(i, 8+i, shufLo, shufHi)
	}
	return out
}

// packAlongTBF16 emits the packer of B panels from a matrix with k
// contiguous along its rows (x·Wᵀ: the rows of W are columns of B):
// 16 rows converted, then transposed as 16×16 pairs.
func packAlongTBF16() {
	TEXT("packAlongTBF16", NOSPLIT, "func(dst *uint16, src *float32, ld int, steps int, tail uint32, scale float32)")
	Doc("packAlongTBF16 packs 16 rows of src (k contiguous, all readable) as 16 columns of a B panel (128-byte rows of pairs), steps of 32 values and, if tail ≠ 0, one step of the values in tail's lanes:",
		"",
		"\tfor j < 16, p < 32·steps(+32): dst[(p/2)·64 + j·2 + p%2] = bf16(scale·src[j·ld + p])   (0 outside tail)")
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("ld"), RDX)
	SHLQ(U8(2), RDX)
	LEAQ(Mem{Base: RDX, Index: RDX, Scale: 2}, R11)
	LEAQ(Mem{Base: RSI, Index: RDX, Scale: 4}, R8)
	LEAQ(Mem{Base: R8, Index: RDX, Scale: 4}, R9)
	LEAQ(Mem{Base: R9, Index: RDX, Scale: 4}, R10)
	Load(Param("steps"), RBX)
	VBROADCASTSS(mustResolve(Param("scale")).Addr, Z31)
	loadTail(mustResolve(Param("tail")).Addr)
	base := []GPPhysical{RSI, R8, R9, R10}
	rowMem := func(r int) Mem {
		b := base[r/4]
		switch r % 4 {
		case 0:
			return Mem{Base: b}
		case 1:
			return Mem{Base: b, Index: RDX, Scale: 1}
		case 2:
			return Mem{Base: b, Index: RDX, Scale: 2}
		}
		return Mem{Base: b, Index: R11, Scale: 1}
	}
	block := func(masked bool) {
		for r := range 16 {
			cvt32(rowMem(r), masked, zmm[r])
		}
		out := transpose16(zmm[:16], Z18)
		for q, z := range out {
			VMOVDQU32(z, Mem{Base: RDI, Disp: q * 128})
		}
	}
	Label("patb_step")
	TESTQ(RBX, RBX)
	JE(LabelRef("patb_tail"))
	block(false)
	for _, b := range base {
		ADDQ(U32(128), b)
	}
	ADDQ(U32(2048), RDI)
	DECQ(RBX)
	JMP(LabelRef("patb_step"))
	Label("patb_tail")
	KORTESTW(K1, K1)
	JE(LabelRef("patb_done"))
	block(true)
	Label("patb_done")
	VZEROUPPER()
	RET()
}

// pairIndex is the VPERMW table that interleaves the two halves of a
// VCVTNE2PS2BF16 result: word 2j from word j, word 2j+1 from word 16+j.
var pairIndex = sync.OnceValue(func() Mem {
	m := GLOBL("bf16PairIndex", RODATA|NOPTR)
	for j := range 16 {
		DATA(4*j, U32(uint32(j)|uint32(16+j)<<16))
	}
	return m
})

// pairs converts the rows at m0 and m1 (16 lanes, masked by K1) times Z31
// into 16 pairs (row m0 low, m1 high) in dst, using Z16, Z17 and the
// index in Z30.
func pairs(m0, m1 Mem, dst VecPhysical) { pairsMasked(m0, m1, K1, dst) }

// pairsMasked is pairs with the lanes of mask k.
func pairsMasked(m0, m1 Mem, k Op, dst VecPhysical) {
	VMOVUPS_Z(m0, k, Z16)
	VMOVUPS_Z(m1, k, Z17)
	VMULPS(Z31, Z16, Z16)
	VMULPS(Z31, Z17, Z17)
	vcvtne2ps2bf16(Z16, Z17, dst)
	VPERMW(dst, Z30, dst)
}

// packPairsBF16 emits the packer of B panels from a matrix with k down its
// columns (dy·W and dyᵀ·x): rows 2q and 2q+1 interleaved.
func packPairsBF16() {
	TEXT("packPairsBF16", NOSPLIT, "func(dst *uint16, src *float32, ld int, pairs int, load uint32, scale float32)")
	Doc("packPairsBF16 packs 16 columns (load mask; others 0) of src (k down the columns) as 16 columns of a B panel (128-byte rows of pairs):",
		"",
		"\tfor q < pairs, j < 16, h < 2: dst[q·64 + j·2 + h] = bf16(scale·src[(2q+h)·ld + j])")
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("ld"), RDX)
	SHLQ(U8(2), RDX)
	Load(Param("pairs"), RCX)
	VBROADCASTSS(mustResolve(Param("scale")).Addr, Z31)
	MOVL(mustResolve(Param("load")).Addr, EAX)
	KMOVW(EAX, K1)
	VMOVDQU32(pairIndex(), Z30)
	LEAQ(Mem{Base: RDX, Index: RDX, Scale: 1}, RBX) // two rows

	Label("ppb_loop")
	TESTQ(RCX, RCX)
	JE(LabelRef("ppb_done"))
	pairs(Mem{Base: RSI}, Mem{Base: RSI, Index: RDX, Scale: 1}, Z0)
	VMOVDQU32(Z0, Mem{Base: RDI})
	ADDQ(RBX, RSI)
	ADDQ(U32(128), RDI)
	DECQ(RCX)
	JMP(LabelRef("ppb_loop"))

	Label("ppb_done")
	VZEROUPPER()
	RET()
}

// packPairsTBF16 emits the packer of A strips from a matrix with k down
// its columns (dyᵀ·x: the rows of dy are k): per step and half of the
// strip, 16 pairs of rows interleaved, then transposed into 16 rows of the
// strip. Both halves of a step go before the next step, so each row is
// read 128 bytes at once: a strided source (dy of a wide layer) is read
// twice as fast as a half at a time.
func packPairsTBF16() {
	TEXT("packPairsTBF16", NOSPLIT, "func(dst *uint16, src *float32, ld int, steps int, load uint32, scale float32)")
	Doc("packPairsTBF16 packs 32 columns (load mask; others 0) of src (k down the columns) as the 32 rows of an A strip, steps of 32 values:",
		"",
		"\tfor i < 32, s < steps, t < 32: dst[s·1024 + i·32 + t] = bf16(scale·src[(32s+t)·ld + i])")
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("ld"), RDX)
	SHLQ(U8(2), RDX)
	Load(Param("steps"), RCX)
	VBROADCASTSS(mustResolve(Param("scale")).Addr, Z31)
	loadTail(mustResolve(Param("load")).Addr) // K1, K2: the lanes of each half
	VMOVDQU32(pairIndex(), Z30)
	LEAQ(Mem{Base: RDX, Index: RDX, Scale: 1}, RBX) // two rows

	Label("pptb_step")
	TESTQ(RCX, RCX)
	JE(LabelRef("pptb_done"))
	for h := range 2 {
		// a half with no lanes loads zeros: its rows of the strip are 0
		LEAQ(Mem{Base: RSI, Disp: 64 * h}, R8)
		for q := range 16 {
			pairsMasked(Mem{Base: R8}, Mem{Base: R8, Index: RDX, Scale: 1}, []Op{K1, K2}[h], zmm[q])
			ADDQ(RBX, R8)
		}
		out := transpose16(zmm[:16], Z18)
		for i, z := range out {
			VMOVDQU32(z, Mem{Base: RDI, Disp: h*1024 + i*64})
		}
	}
	LEAQ(Mem{Base: R8, Disp: -64}, RSI) // 32 rows on
	ADDQ(U32(2048), RDI)
	DECQ(RCX)
	JMP(LabelRef("pptb_step"))

	Label("pptb_done")
	VZEROUPPER()
	RET()
}

// roundBF16AVX2 emits the in-place rounding of float32 values to
// bfloat16 (the fp32 emulation of GemmBF16), in integer AVX2 operations
// with the rounding of internal/bf16.
func roundBF16AVX2() {
	TEXT("roundBF16AVX2", NOSPLIT, "func(x *float32, n int)")
	Doc("roundBF16AVX2 rounds n (a multiple of 8) float32 values at x to bfloat16 in place:",
		"",
		"\tx[i] = bf16.Round(x[i])")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	c := func(name string, v uint32) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i := range 8 {
			DATA(4*i, U32(v))
		}
		return m
	}
	exp, abs, inf, one := YMM(), YMM(), YMM(), YMM()
	bias, hi, quiet, sign := YMM(), YMM(), YMM(), YMM()
	VMOVDQU(c("bf16Exp", 0x7f800000), exp)
	VMOVDQU(c("bf16Abs", 0x7fffffff), abs)
	VMOVDQA(exp, inf)
	VMOVDQU(c("bf16One", 1), one)
	VMOVDQU(c("bf16Bias", 0x7fff), bias)
	VMOVDQU(c("bf16Hi", 0xffff0000), hi)
	VMOVDQU(c("bf16Quiet", 0x00400000), quiet)
	VMOVDQU(c("bf16Sign", 0x80000000), sign)
	zero := YMM()
	VPXOR(zero, zero, zero)

	Label("rb_loop")
	TESTQ(n, n)
	JE(LabelRef("rb_done"))
	v, t, r, m := YMM(), YMM(), YMM(), YMM()
	VMOVDQU(Mem{Base: x}, v)
	// r = (v + 0x7fff + ((v >> 16) & 1)) & 0xffff0000
	VPSRLD(U8(16), v, t)
	VPAND(one, t, t)
	VPADDD(bias, v, r)
	VPADDD(t, r, r)
	VPAND(hi, r, r)
	// NaN: (v | quiet) & 0xffff0000
	VPAND(abs, v, t)
	VPCMPGTD(inf, t, m)
	VPOR(quiet, v, t)
	VPAND(hi, t, t)
	VPBLENDVB(m, t, r, r)
	// zero or subnormal: the sign alone
	VPAND(exp, v, t)
	VPCMPEQD(zero, t, m)
	VPAND(sign, v, t)
	VPBLENDVB(m, t, r, r)
	VMOVDQU(r, Mem{Base: x})
	ADDQ(U8(32), x)
	SUBQ(U8(8), n)
	JMP(LabelRef("rb_loop"))

	Label("rb_done")
	VZEROUPPER()
	RET()
}

// roundBF16AVX512 emits the in-place rounding with the hardware
// conversion: VCVTNEPS2BF16, then the 16 bfloat16 widened back.
func roundBF16AVX512() {
	TEXT("roundBF16AVX512", NOSPLIT, "func(x *float32, n int)")
	Doc("roundBF16AVX512 rounds n (a multiple of 16) float32 values at x to bfloat16 in place with VCVTNEPS2BF16:",
		"",
		"\tx[i] = bf16.Round(x[i])")
	Load(Param("x"), RDI)
	Load(Param("n"), RCX)
	Label("rb512_loop")
	CMPQ(RCX, U8(32))
	JL(LabelRef("rb512_one"))
	for u := range 2 {
		VMOVUPS(Mem{Base: RDI, Disp: 64 * u}, zmm[u])
		vcvtneps2bf16(zmm[u], zmm[2+u])
	}
	for u := range 2 {
		VPMOVZXWD(zmm[2+u].AsY(), zmm[u])
		VPSLLD(U8(16), zmm[u], zmm[u])
		VMOVUPS(zmm[u], Mem{Base: RDI, Disp: 64 * u})
	}
	ADDQ(U8(128), RDI)
	SUBQ(U8(32), RCX)
	JMP(LabelRef("rb512_loop"))
	Label("rb512_one")
	TESTQ(RCX, RCX)
	JE(LabelRef("rb512_done"))
	VMOVUPS(Mem{Base: RDI}, Z0)
	vcvtneps2bf16(Z0, Z2)
	VPMOVZXWD(Y2, Z0)
	VPSLLD(U8(16), Z0, Z0)
	VMOVUPS(Z0, Mem{Base: RDI})
	Label("rb512_done")
	VZEROUPPER()
	RET()
}
