package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The row kernels below process n values as blocks of 16 (one ZMM) and a
// last partial block under a lane mask: blocks = n/16, tail = 1<<(n%16)−1.

// expConsts holds the broadcast constants of the vector exp.
type expConsts struct {
	lo, hi, log2e, ln2hi, ln2lo, one VecVirtual
	p                                [6]VecVirtual
}

var consts = map[string]Mem{}

// f32 is a float32 constant in the data section, emitted once per name.
func f32(name string, v float32) Mem {
	if m, ok := consts[name]; ok {
		return m
	}
	m := ConstData(name, U32(math.Float32bits(v)))
	consts[name] = m
	return m
}

func loadExpConsts() *expConsts {
	c := &expConsts{}
	bc := func(name string, v float32) VecVirtual {
		z := ZMM()
		VBROADCASTSS(f32(name, v), z)
		return z
	}
	c.lo = bc("expLo", -103.0)
	c.hi = bc("expHi", 89)
	c.log2e = bc("expLog2e", 1.44269504088896341)
	c.ln2hi = bc("expLn2hi", 0.693359375)
	c.ln2lo = bc("expLn2lo", -2.12194440e-4)
	c.one = bc("expOne", 1)
	for i, v := range []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1} {
		c.p[i] = bc("expP"+string(rune('0'+i)), v)
	}
	return c
}

// exp sets y = e^x lane-wise (Cephes expf: x = n·ln2 + r, a degree-6
// polynomial for e^r, VSCALEFPS for 2^n); x is clobbered. NaN propagates.
func (c *expConsts) exp(x, y VecVirtual) {
	VMAXPS(x, c.lo, x) // operand order keeps a NaN in x
	VMINPS(x, c.hi, x)
	n := ZMM()
	VMULPS(c.log2e, x, n)
	VRNDSCALEPS(U8(0), n, n) // round to nearest
	VFNMADD231PS(c.ln2hi, n, x)
	VFNMADD231PS(c.ln2lo, n, x) // x = r
	VMOVAPS(c.p[0], y)
	for i := 1; i < 6; i++ {
		VFMADD213PS(c.p[i], x, y) // y = y·r + p[i]
	}
	r2 := ZMM()
	VMULPS(x, x, r2)
	VFMADD213PS(x, r2, y) // y = y·r² + r
	VADDPS(c.one, y, y)
	VSCALEFPS(n, y, y)
}

// hsum returns the sum of the lanes of z in the low lane of an XMM.
func hsum(z VecVirtual) VecVirtual {
	y := YMM()
	VEXTRACTF64X4(U8(1), z, y)
	VADDPS(z.AsY(), y, y)
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VADDPS(y.AsX(), x, x)
	VHADDPS(x, x, x)
	VHADDPS(x, x, x)
	return x
}

// hmax returns the max of the lanes of z in the low lane of an XMM.
func hmax(z VecVirtual) VecVirtual {
	y := YMM()
	VEXTRACTF64X4(U8(1), z, y)
	VMAXPS(z.AsY(), y, y)
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VMAXPS(y.AsX(), x, x)
	t := XMM()
	VPERMILPS(U8(0x4e), x, t)
	VMAXPS(t, x, x)
	VPERMILPS(U8(0xb1), x, t)
	VMAXPS(t, x, x)
	return x
}

// blockLoop emits the loop over full blocks then the masked tail block:
// body(mask) is called twice, with mask nil for full blocks; advance moves
// the pointers by one block.
func blockLoop(name string, blocks, tail Register, body func(k Op), advance func()) {
	Label(name + "_loop")
	TESTQ(blocks, blocks)
	JE(LabelRef(name + "_tail"))
	body(nil)
	advance()
	DECQ(blocks)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_tail")
	TESTL(tail, tail)
	JE(LabelRef(name + "_done"))
	k := K()
	KMOVW(tail, k)
	body(k)
	Label(name + "_done")
}

// load emits a full or masked (zeroing) load.
func load(m Mem, k Op, z VecVirtual) {
	if k == nil {
		VMOVUPS(m, z)
	} else {
		VMOVUPS_Z(m, k, z)
	}
}

func store(z VecVirtual, k Op, m Mem) {
	if k == nil {
		VMOVUPS(z, m)
	} else {
		VMOVUPS(z, k, m)
	}
}

func rowKernels() {
	// maxAVX512 returns max_i x[i].
	TEXT("maxAVX512", NOSPLIT, "func(x *float32, blocks int, tail uint32) float32")
	Doc("maxAVX512 returns the largest of the 16·blocks+popcount(tail) values at x.")
	{
		x := Load(Param("x"), GP64())
		blocks := Load(Param("blocks"), GP64())
		tail := Load(Param("tail"), GP32())
		acc := ZMM()
		VBROADCASTSS(f32("negInf", float32(math.Inf(-1))), acc)
		blockLoop("max", blocks, tail, func(k Op) {
			if k == nil {
				VMAXPS(Mem{Base: x}, acc, acc)
			} else {
				VMAXPS(Mem{Base: x}, acc, k, acc)
			}
		}, func() { ADDQ(U8(64), x) })
		r := hmax(acc)
		VZEROUPPER()
		Store(r, ReturnIndex(0))
		RET()
	}

	// expSumAVX512: dst[i] = e^(src[i]−sub)·mul, returns Σ e^(src[i]−sub).
	for _, st := range []bool{true, false} {
		name := "expSumAVX512"
		sig := "func(dst, src *float32, blocks int, tail uint32, sub, mul float32) float32"
		if !st {
			name = "sumExpAVX512"
			sig = "func(src *float32, blocks int, tail uint32, sub float32) float32"
		}
		TEXT(name, NOSPLIT, sig)
		if st {
			Doc(name + " sets dst[i] = e^(src[i]−sub)·mul and returns Σ e^(src[i]−sub) (dst may be src).")
		} else {
			Doc(name + " returns Σ e^(src[i]−sub).")
		}
		var dst Register
		if st {
			dst = Load(Param("dst"), GP64())
		}
		src := Load(Param("src"), GP64())
		blocks := Load(Param("blocks"), GP64())
		tail := Load(Param("tail"), GP32())
		c := loadExpConsts()
		sub := ZMM()
		VBROADCASTSS(mustResolve(Param("sub")).Addr, sub)
		var mul VecVirtual
		if st {
			mul = ZMM()
			VBROADCASTSS(mustResolve(Param("mul")).Addr, mul)
		}
		acc := ZMM()
		VPXORD(acc, acc, acc)
		blockLoop(name, blocks, tail, func(k Op) {
			x, e := ZMM(), ZMM()
			load(Mem{Base: src}, k, x)
			VSUBPS(sub, x, x)
			c.exp(x, e)
			if k == nil {
				VADDPS(e, acc, acc)
			} else {
				VADDPS(e, acc, k, acc)
			}
			if st {
				VMULPS(mul, e, e)
				store(e, k, Mem{Base: dst})
			}
		}, func() {
			ADDQ(U8(64), src)
			if st {
				ADDQ(U8(64), dst)
			}
		})
		r := hsum(acc)
		VZEROUPPER()
		Store(r, ReturnIndex(0))
		RET()
	}

	// expGradAVX512: p = e^(p−lse); dp = p·(dp − d).
	TEXT("expGradAVX512", NOSPLIT, "func(p, dp *float32, blocks int, tail uint32, lse, d float32)")
	Doc("expGradAVX512 sets p[i] = e^(p[i]−lse) and dp[i] = p[i]·(dp[i]−d).")
	{
		p := Load(Param("p"), GP64())
		dp := Load(Param("dp"), GP64())
		blocks := Load(Param("blocks"), GP64())
		tail := Load(Param("tail"), GP32())
		c := loadExpConsts()
		lse, d := ZMM(), ZMM()
		VBROADCASTSS(mustResolve(Param("lse")).Addr, lse)
		VBROADCASTSS(mustResolve(Param("d")).Addr, d)
		blockLoop("expGrad", blocks, tail, func(k Op) {
			x, e, g := ZMM(), ZMM(), ZMM()
			load(Mem{Base: p}, k, x)
			VSUBPS(lse, x, x)
			c.exp(x, e)
			store(e, k, Mem{Base: p})
			load(Mem{Base: dp}, k, g)
			VSUBPS(d, g, g)
			VMULPS(e, g, g)
			store(g, k, Mem{Base: dp})
		}, func() {
			ADDQ(U8(64), p)
			ADDQ(U8(64), dp)
		})
		VZEROUPPER()
		RET()
	}

	// swigluAVX512: out = a·σ(a)·b.
	TEXT("swigluAVX512", NOSPLIT, "func(out, a, b *float32, blocks int, tail uint32)")
	Doc("swigluAVX512 sets out[i] = a[i]·σ(a[i])·b[i].")
	{
		out := Load(Param("out"), GP64())
		a := Load(Param("a"), GP64())
		b := Load(Param("b"), GP64())
		blocks := Load(Param("blocks"), GP64())
		tail := Load(Param("tail"), GP32())
		c := loadExpConsts()
		zero := ZMM()
		VPXORD(zero, zero, zero)
		blockLoop("swiglu", blocks, tail, func(k Op) {
			x, nx, e, y := ZMM(), ZMM(), ZMM(), ZMM()
			load(Mem{Base: a}, k, x)
			VSUBPS(x, zero, nx) // nx = −x
			c.exp(nx, e)
			VADDPS(c.one, e, e)
			VDIVPS(e, x, y) // y = x / (1 + e^−x)
			if k == nil {
				VMULPS(Mem{Base: b}, y, y)
			} else {
				bv := ZMM()
				load(Mem{Base: b}, k, bv)
				VMULPS(bv, y, y)
			}
			store(y, k, Mem{Base: out})
		}, func() {
			ADDQ(U8(64), out)
			ADDQ(U8(64), a)
			ADDQ(U8(64), b)
		})
		VZEROUPPER()
		RET()
	}

	// swigluGradAVX512: da = d·b·σ(a)·(1 + a·(1−σ(a))), db = d·a·σ(a).
	TEXT("swigluGradAVX512", NOSPLIT, "func(da, db, d, a, b *float32, blocks int, tail uint32)")
	Doc("swigluGradAVX512 sets da[i] = d[i]·b[i]·σ(a[i])·(1 + a[i]·(1−σ(a[i]))) and db[i] = d[i]·a[i]·σ(a[i]).")
	{
		da := Load(Param("da"), GP64())
		db := Load(Param("db"), GP64())
		dd := Load(Param("d"), GP64())
		a := Load(Param("a"), GP64())
		b := Load(Param("b"), GP64())
		blocks := Load(Param("blocks"), GP64())
		tail := Load(Param("tail"), GP32())
		c := loadExpConsts()
		zero := ZMM()
		VPXORD(zero, zero, zero)
		blockLoop("swigluGrad", blocks, tail, func(k Op) {
			x, nx, e, s, t, g, bv := ZMM(), ZMM(), ZMM(), ZMM(), ZMM(), ZMM(), ZMM()
			load(Mem{Base: a}, k, x)
			VSUBPS(x, zero, nx)
			c.exp(nx, e)
			VADDPS(c.one, e, e)
			VDIVPS(e, c.one, s) // s = σ(a)
			load(Mem{Base: dd}, k, g)
			VMULPS(s, g, g) // g = d·σ
			// db = g·a
			VMULPS(x, g, t)
			store(t, k, Mem{Base: db})
			// da = g·b·(1 + a·(1−s))
			VSUBPS(s, c.one, t)      // t = 1 − s
			VFMADD213PS(c.one, x, t) // t = t·a + 1
			load(Mem{Base: b}, k, bv)
			VMULPS(bv, g, g)
			VMULPS(t, g, g)
			store(g, k, Mem{Base: da})
		}, func() {
			for _, r := range []Register{da, db, dd, a, b} {
				ADDQ(U8(64), r)
			}
		})
		VZEROUPPER()
		RET()
	}
}

// expConsts8 holds the constants of the 8-lane AVX2 exp: the clamps and 1
// in registers, the rest as 32-byte vectors in memory (AVX2 has 16 YMM).
type expConsts8 struct {
	lo, hi, one VecVirtual
}

// vec8 is a float32 constant repeated 8 times in the data section.
func vec8(name string, v float32) Mem {
	if m, ok := consts[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(math.Float32bits(v)))
	}
	consts[name] = m
	return m
}

func loadExpConsts8() *expConsts8 {
	c := &expConsts8{lo: YMM(), hi: YMM(), one: YMM()}
	VMOVUPS(vec8("exp8Lo", -87.33654), c.lo)
	VMOVUPS(vec8("exp8Hi", 88.72283), c.hi)
	VMOVUPS(vec8("exp8One", 1), c.one)
	return c
}

// neg sets y = −x.
func (c *expConsts8) neg(x, y VecVirtual) {
	VXORPS(vec8("exp8Sign", math.Float32frombits(0x80000000)), x, y)
}

var expPoly = []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1}

// exp sets y = e^x lane-wise exactly like the scalar expf: 0 below −87.34,
// +Inf above 88.72, NaN for NaN; x is clobbered.
func (c *expConsts8) exp(x, y VecVirtual) {
	big, small := YMM(), YMM()
	VCMPPS(U8(0x1e), c.hi, x, big)   // x > hi (ordered, quiet)
	VCMPPS(U8(0x11), c.lo, x, small) // x < lo (ordered, quiet)
	VMAXPS(x, c.lo, x)               // operand order keeps a NaN in x
	VMINPS(x, c.hi, x)
	n := YMM()
	VMULPS(vec8("exp8Log2e", 1.44269504088896341), x, n)
	VROUNDPS(U8(0), n, n)
	VFNMADD231PS(vec8("exp8Ln2hi", 0.693359375), n, x)
	VFNMADD231PS(vec8("exp8Ln2lo", -2.12194440e-4), n, x)
	VMOVUPS(vec8("exp8P0", expPoly[0]), y)
	for i := 1; i < 6; i++ {
		VFMADD213PS(vec8("exp8P"+string(rune('0'+i)), expPoly[i]), x, y)
	}
	r2 := YMM()
	VMULPS(x, x, r2)
	VFMADD213PS(x, r2, y)
	VADDPS(c.one, y, y)
	VCVTPS2DQ(n, n)
	VPADDD(vec8("exp8Bias", math.Float32frombits(127)), n, n)
	VPSLLD(U8(23), n, n)
	VMULPS(n, y, y)
	VBLENDVPS(big, vec8("exp8Inf", float32(math.Inf(1))), y, y)
	VANDNPS(y, small, y)
}

// hsum8 returns the sum of the lanes of y in the low lane of an XMM.
func hsum8(y VecVirtual) VecVirtual {
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VADDPS(y.AsX(), x, x)
	VHADDPS(x, x, x)
	VHADDPS(x, x, x)
	return x
}

func hmax8(y VecVirtual) VecVirtual {
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VMAXPS(y.AsX(), x, x)
	t := XMM()
	VPERMILPS(U8(0x4e), x, t)
	VMAXPS(t, x, x)
	VPERMILPS(U8(0xb1), x, t)
	VMAXPS(t, x, x)
	return x
}

// loop8 emits a loop over blocks of 8 lanes.
func loop8(name string, blocks Register, body func(), advance func()) {
	Label(name + "_loop")
	TESTQ(blocks, blocks)
	JE(LabelRef(name + "_done"))
	body()
	advance()
	DECQ(blocks)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
}

// rowKernelsAVX2 emits the row primitives for AVX2/FMA CPUs: whole blocks
// of 8 only; the Go wrappers finish the tail.
func rowKernelsAVX2() {
	TEXT("maxAVX2", NOSPLIT, "func(x *float32, blocks int) float32")
	Doc("maxAVX2 returns the largest of the 8·blocks values at x (blocks ≥ 1).")
	{
		x := Load(Param("x"), GP64())
		blocks := Load(Param("blocks"), GP64())
		acc := YMM()
		VMOVUPS(Mem{Base: x}, acc)
		loop8("max8", blocks, func() { VMAXPS(Mem{Base: x}, acc, acc) }, func() { ADDQ(U8(32), x) })
		r := hmax8(acc)
		VZEROUPPER()
		Store(r, ReturnIndex(0))
		RET()
	}

	for _, st := range []bool{true, false} {
		name, sig := "expSumAVX2", "func(dst, src *float32, blocks int, sub, mul float32) float32"
		if !st {
			name, sig = "sumExpAVX2", "func(src *float32, blocks int, sub float32) float32"
		}
		TEXT(name, NOSPLIT, sig)
		if st {
			Doc(name + " sets dst[i] = e^(src[i]−sub)·mul for 8·blocks values and returns Σ e^(src[i]−sub).")
		} else {
			Doc(name + " returns Σ e^(src[i]−sub) over 8·blocks values.")
		}
		var dst Register
		if st {
			dst = Load(Param("dst"), GP64())
		}
		src := Load(Param("src"), GP64())
		blocks := Load(Param("blocks"), GP64())
		c := loadExpConsts8()
		sub := YMM()
		VBROADCASTSS(mustResolve(Param("sub")).Addr, sub)
		var mul VecVirtual
		if st {
			mul = YMM()
			VBROADCASTSS(mustResolve(Param("mul")).Addr, mul)
		}
		acc := YMM()
		VXORPS(acc, acc, acc)
		loop8(name, blocks, func() {
			x, e := YMM(), YMM()
			VMOVUPS(Mem{Base: src}, x)
			VSUBPS(sub, x, x)
			c.exp(x, e)
			VADDPS(e, acc, acc)
			if st {
				VMULPS(mul, e, e)
				VMOVUPS(e, Mem{Base: dst})
			}
		}, func() {
			ADDQ(U8(32), src)
			if st {
				ADDQ(U8(32), dst)
			}
		})
		r := hsum8(acc)
		VZEROUPPER()
		Store(r, ReturnIndex(0))
		RET()
	}

	TEXT("expGradAVX2", NOSPLIT, "func(p, dp *float32, blocks int, lse, d float32)")
	Doc("expGradAVX2 sets p[i] = e^(p[i]−lse) and dp[i] = p[i]·(dp[i]−d) for 8·blocks values.")
	{
		p := Load(Param("p"), GP64())
		dp := Load(Param("dp"), GP64())
		blocks := Load(Param("blocks"), GP64())
		c := loadExpConsts8()
		lse, d := YMM(), YMM()
		VBROADCASTSS(mustResolve(Param("lse")).Addr, lse)
		VBROADCASTSS(mustResolve(Param("d")).Addr, d)
		loop8("expGrad8", blocks, func() {
			x, e, g := YMM(), YMM(), YMM()
			VMOVUPS(Mem{Base: p}, x)
			VSUBPS(lse, x, x)
			c.exp(x, e)
			VMOVUPS(e, Mem{Base: p})
			VMOVUPS(Mem{Base: dp}, g)
			VSUBPS(d, g, g)
			VMULPS(e, g, g)
			VMOVUPS(g, Mem{Base: dp})
		}, func() {
			ADDQ(U8(32), p)
			ADDQ(U8(32), dp)
		})
		VZEROUPPER()
		RET()
	}

	TEXT("swigluAVX2", NOSPLIT, "func(out, a, b *float32, blocks int)")
	Doc("swigluAVX2 sets out[i] = a[i]·σ(a[i])·b[i] for 8·blocks values.")
	{
		out := Load(Param("out"), GP64())
		a := Load(Param("a"), GP64())
		b := Load(Param("b"), GP64())
		blocks := Load(Param("blocks"), GP64())
		c := loadExpConsts8()
		loop8("swiglu8", blocks, func() {
			x, nx, e, y := YMM(), YMM(), YMM(), YMM()
			VMOVUPS(Mem{Base: a}, x)
			c.neg(x, nx)
			c.exp(nx, e)
			VADDPS(c.one, e, e)
			VDIVPS(e, x, y)
			VMULPS(Mem{Base: b}, y, y)
			VMOVUPS(y, Mem{Base: out})
		}, func() {
			ADDQ(U8(32), out)
			ADDQ(U8(32), a)
			ADDQ(U8(32), b)
		})
		VZEROUPPER()
		RET()
	}

	TEXT("swigluGradAVX2", NOSPLIT, "func(da, db, d, a, b *float32, blocks int)")
	Doc("swigluGradAVX2 sets da[i] = d[i]·b[i]·σ(a[i])·(1 + a[i]·(1−σ(a[i]))) and db[i] = d[i]·a[i]·σ(a[i]) for 8·blocks values.")
	{
		da := Load(Param("da"), GP64())
		db := Load(Param("db"), GP64())
		dd := Load(Param("d"), GP64())
		a := Load(Param("a"), GP64())
		b := Load(Param("b"), GP64())
		blocks := Load(Param("blocks"), GP64())
		c := loadExpConsts8()
		loop8("swigluGrad8", blocks, func() {
			x, nx, e, s, t, g := YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
			VMOVUPS(Mem{Base: a}, x)
			c.neg(x, nx)
			c.exp(nx, e)
			VADDPS(c.one, e, e)
			VDIVPS(e, c.one, s)
			VMOVUPS(Mem{Base: dd}, g)
			VMULPS(s, g, g)
			VMULPS(x, g, t)
			VMOVUPS(t, Mem{Base: db})
			VSUBPS(s, c.one, t)
			VFMADD213PS(c.one, x, t)
			VMULPS(Mem{Base: b}, g, g)
			VMULPS(t, g, g)
			VMOVUPS(g, Mem{Base: da})
		}, func() {
			for _, r := range []Register{da, db, dd, a, b} {
				ADDQ(U8(32), r)
			}
		})
		VZEROUPPER()
		RET()
	}
}

// adamw emits the AVX-512 AdamW update (see adamPart for the loop).
func adamw() {
	TEXT("adamwAVX512", NOSPLIT, "func(p, grad, m, v *float32, blocks int, tail uint32, k *[8]float32)")
	Pragma("noescape")
	Doc("adamwAVX512 applies the AdamW update of adamPart to 16·blocks+popcount(tail) values;",
		"k holds b1, 1−b1, b2, 1−b2, stepSize, 1/sqrt(bc2), eps, decay.")
	p := Load(Param("p"), GP64())
	g := Load(Param("grad"), GP64())
	m := Load(Param("m"), GP64())
	v := Load(Param("v"), GP64())
	blocks := Load(Param("blocks"), GP64())
	tail := Load(Param("tail"), GP32())
	kp := Load(Param("k"), GP64())
	var c [8]VecVirtual
	for i := range c {
		c[i] = ZMM()
		VBROADCASTSS(Mem{Base: kp, Disp: 4 * i}, c[i])
	}
	b1, ob1, b2, ob2, step, invBc2, eps, decay := c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
	blockLoop("adamw", blocks, tail, func(k Op) {
		gv, mv, vv, pv, t := ZMM(), ZMM(), ZMM(), ZMM(), ZMM()
		load(Mem{Base: g}, k, gv)
		load(Mem{Base: m}, k, mv)
		load(Mem{Base: v}, k, vv)
		load(Mem{Base: p}, k, pv)
		// m = b1·m + (1−b1)·g
		VMULPS(b1, mv, mv)
		VFMADD231PS(ob1, gv, mv)
		// v = b2·v + (1−b2)·g·g
		VMULPS(ob2, gv, t)
		VMULPS(gv, t, t)
		VFMADD132PS(b2, t, vv) // vv = vv·b2 + t
		store(mv, k, Mem{Base: m})
		store(vv, k, Mem{Base: v})
		// denom = sqrt(v)·invBc2 + eps; p = p·decay − step·(m/denom)
		VSQRTPS(vv, t)
		VFMADD132PS(invBc2, eps, t) // t = t·invBc2 + eps
		VDIVPS(t, mv, mv)
		VMULPS(step, mv, mv)
		VFMSUB132PS(decay, mv, pv) // pv = pv·decay − mv
		store(pv, k, Mem{Base: p})
	}, func() {
		for _, r := range []Register{p, g, m, v} {
			ADDQ(U8(64), r)
		}
	})
	VZEROUPPER()
	RET()
}

// adamwAVX2 emits the 8-lane AVX2/FMA AdamW update (whole blocks of 8; the
// Go wrapper finishes the tail).
func adamwAVX2() {
	TEXT("adamwAVX2", NOSPLIT, "func(p, grad, m, v *float32, blocks int, k *[8]float32)")
	Pragma("noescape")
	Doc("adamwAVX2 applies the AdamW update of adamPart to 8·blocks values;",
		"k holds b1, 1−b1, b2, 1−b2, stepSize, 1/sqrt(bc2), eps, decay.")
	p := Load(Param("p"), GP64())
	g := Load(Param("grad"), GP64())
	m := Load(Param("m"), GP64())
	v := Load(Param("v"), GP64())
	blocks := Load(Param("blocks"), GP64())
	kp := Load(Param("k"), GP64())
	var c [8]VecVirtual
	for i := range c {
		c[i] = YMM()
		VBROADCASTSS(Mem{Base: kp, Disp: 4 * i}, c[i])
	}
	b1, ob1, b2, ob2, step, invBc2, eps, decay := c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
	loop8("adamw8", blocks, func() {
		gv, mv, vv, pv, t := YMM(), YMM(), YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: g}, gv)
		VMOVUPS(Mem{Base: m}, mv)
		VMOVUPS(Mem{Base: v}, vv)
		VMOVUPS(Mem{Base: p}, pv)
		VMULPS(b1, mv, mv)
		VFMADD231PS(ob1, gv, mv)
		VMULPS(ob2, gv, t)
		VMULPS(gv, t, t)
		VFMADD132PS(b2, t, vv)
		VMOVUPS(mv, Mem{Base: m})
		VMOVUPS(vv, Mem{Base: v})
		VSQRTPS(vv, t)
		VFMADD132PS(invBc2, eps, t)
		VDIVPS(t, mv, mv)
		VMULPS(step, mv, mv)
		VFMSUB132PS(decay, mv, pv)
		VMOVUPS(pv, Mem{Base: p})
	}, func() {
		for _, r := range []Register{p, g, m, v} {
			ADDQ(U8(32), r)
		}
	})
	VZEROUPPER()
	RET()
}

// ropeRows emits RoPE over rows of heads: per block of 16 pairs, cos and
// sin of the row's position widened to interleaved pairs (VPERMPS), then
// per head x·cos + swap(x)·(∓sin, ±sin) — two products and one sum per
// value, the operations of the Go loop, so the bits are the same.
func ropeRows() {
	TEXT("ropeRowsAVX512", NOSPLIT, "func(x *float32, ld int, rows int, heads int, blocks int, cos *float32, sin *float32, half int, sign float32)")
	Doc("ropeRowsAVX512 rotates the interleaved pairs of rows rows (stride ld) of heads heads of 32·blocks values each,",
		"row r with the tables at cos[r·half:], sin[r·half:] (16·blocks ≤ half):",
		"",
		"\tx[2i], x[2i+1] = x[2i]·c − x[2i+1]·s, x[2i]·s + x[2i+1]·c   (c = cos[i], s = sign·sin[i])")
	x := Load(Param("x"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld)
	rows := Load(Param("rows"), GP64())
	heads := Load(Param("heads"), GP64())
	nblocks := Load(Param("blocks"), GP64())
	cs := Load(Param("cos"), GP64())
	sn := Load(Param("sin"), GP64())
	half := Load(Param("half"), GP64())
	SHLQ(U8(2), half)
	hs := GP64() // bytes per head: 32·blocks floats
	MOVQ(nblocks, hs)
	SHLQ(U8(7), hs)

	idx := func(name string, first int) VecVirtual {
		m := GLOBL(name, RODATA|NOPTR)
		for j := range 16 {
			DATA(4*j, U32(uint32(first+j/2)))
		}
		z := ZMM()
		VMOVDQU32(m, z)
		return z
	}
	idxLo, idxHi := idx("ropeIdxLo", 0), idx("ropeIdxHi", 8)
	pat := GLOBL("ropeSignPattern", RODATA|NOPTR)
	for j := range 16 {
		DATA(4*j, F32(float32(2*(j%2)-1)))
	}
	signv := ZMM()
	VBROADCASTSS(mustResolve(Param("sign")).Addr, signv)
	VMULPS(pat, signv, signv) // (−sign, +sign, …)

	r, b, h := GP64(), GP64(), GP64()
	row, cp, sp, p := GP64(), GP64(), GP64(), GP64()
	MOVQ(rows, r)
	Label("rope_row")
	TESTQ(r, r)
	JE(LabelRef("rope_done"))
	MOVQ(x, row)
	MOVQ(cs, cp)
	MOVQ(sn, sp)
	MOVQ(nblocks, b)
	Label("rope_block")
	TESTQ(b, b)
	JE(LabelRef("rope_next"))
	c16, s16 := ZMM(), ZMM()
	VMOVUPS(Mem{Base: cp}, c16)
	VMOVUPS(Mem{Base: sp}, s16)
	cLo, cHi, sLo, sHi := ZMM(), ZMM(), ZMM(), ZMM()
	VPERMPS(c16, idxLo, cLo)
	VPERMPS(c16, idxHi, cHi)
	VPERMPS(s16, idxLo, sLo)
	VPERMPS(s16, idxHi, sHi)
	VMULPS(signv, sLo, sLo)
	VMULPS(signv, sHi, sHi)
	MOVQ(row, p)
	MOVQ(heads, h)
	Label("rope_head")
	for u, cv := range []VecVirtual{cLo, cHi} {
		sv := []VecVirtual{sLo, sHi}[u]
		v, w := ZMM(), ZMM()
		VMOVUPS(Mem{Base: p, Disp: 64 * u}, v)
		VPERMILPS(U8(0xb1), v, w)
		VMULPS(cv, v, v)
		VMULPS(sv, w, w)
		VADDPS(w, v, v)
		VMOVUPS(v, Mem{Base: p, Disp: 64 * u})
	}
	ADDQ(hs, p)
	DECQ(h)
	JNZ(LabelRef("rope_head"))
	ADDQ(U8(128), row)
	ADDQ(U8(64), cp)
	ADDQ(U8(64), sp)
	DECQ(b)
	JMP(LabelRef("rope_block"))
	Label("rope_next")
	ADDQ(ld, x)
	ADDQ(half, cs)
	ADDQ(half, sn)
	DECQ(r)
	JMP(LabelRef("rope_row"))
	Label("rope_done")
	VZEROUPPER()
	RET()
}
