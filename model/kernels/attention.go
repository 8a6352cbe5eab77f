package kernels

import (
	"fmt"
	"math"
)

// attnBlock is the number of query rows processed together. A block of
// queries meets only the keys up to its last row, so the blocks above the
// diagonal are never computed; inside the diagonal block the masked scores
// are zeroed.
const attnBlock = 64

// CausalAttentionForward computes causal softmax attention for every batch
// row b and head h, with scale = 1/√dh, its four products in precision p
// (BF16: q, k, v and the probabilities rounded to bfloat16 as they enter
// a product):
//
//	out[b,t,h] = Σ_{s≤t} softmax_s(scale·q[b,t,h]·k[b,s,h]) · v[b,s,h]
//	lse[b,h,t] = log Σ_{s≤t} exp(scale·q[b,t,h]·k[b,s,h])
//
// Head h of a row is its columns h·dh .. (h+1)·dh. Queries go in blocks of
// attnBlock rows: the scores of a block against the keys up to its diagonal
// (a strip of at most attnBlock × T, per thread, never the T×T matrix) go
// through an exact softmax and are multiplied with v. lse is kept for
// CausalAttentionBackward. Heads run on up to Threads() threads.
//
//	out (B, T, rows of stride ldo), lse (B, H, T),
//	q, k, v (B, T, rows of stride ld)   (packed qkv: q = qkv, k = qkv[d:], v = qkv[2d:], ld = 3d)
func CausalAttentionForward(p Precision, out, lse, q, k, v []float32, B, T, H, dh, ld, ldo int) {
	checkAttention(B, T, H, dh, ld, ldo, q, k, v, out, lse)
	if B*T*H*dh == 0 {
		return
	}
	j := attnJobs.get()
	j.a = attnArgs{out: out, lse: lse, q: q, k: k, v: v, B: B, T: T, H: H, dh: dh, ld: ld, ldo: ldo, round: p == BF16}
	j.rows = B * H
	parallel(j, partsFor(B*H, float64(B*H)*float64(T)*float64(T)*float64(dh)/16))
	j.a = attnArgs{}
	attnJobs.put(j)
}

// CausalAttentionBackward accumulates the gradients of q, k and v of
// CausalAttentionForward (dq += ∂L/∂q and so on), given dout = ∂L/∂out and
// the out and lse that forward returned, its products in precision p (BF16:
// every input of a product rounded to bfloat16). Per query block it
// recomputes the probabilities from lse (P = exp(scale·q·kᵀ − lse)) and
// applies
//
//	dv += Pᵀ·dout;  dS = P ⊙ (dout·vᵀ − rowsum(dout ⊙ out));  dq += scale·dS·k;  dk += scale·dSᵀ·q
//
//	dq, dk, dv, q, k, v (B, T, rows of stride ld), dout, out (B, T, rows of stride ldo), lse (B, H, T)
func CausalAttentionBackward(p Precision, dq, dk, dv, dout, q, k, v, out, lse []float32, B, T, H, dh, ld, ldo int) {
	checkAttention(B, T, H, dh, ld, ldo, q, k, v, out, lse)
	checkAttention(B, T, H, dh, ld, ldo, dq, dk, dv, dout, lse)
	if B*T*H*dh == 0 {
		return
	}
	j := attnJobs.get()
	j.a = attnArgs{out: out, lse: lse, q: q, k: k, v: v, B: B, T: T, H: H, dh: dh, ld: ld, ldo: ldo,
		dq: dq, dk: dk, dv: dv, dout: dout, backward: true, round: p == BF16}
	j.rows = B * H
	parallel(j, partsFor(B*H, float64(B*H)*float64(T)*float64(T)*float64(dh)/8))
	j.a = attnArgs{}
	attnJobs.put(j)
}

func checkAttention(B, T, H, dh, ld, ldo int, q, k, v, out, lse []float32) {
	if B < 0 || T < 0 || H < 0 || dh < 0 || ld < H*dh || ldo < H*dh {
		panic(fmt.Sprintf("kernels: attention: bad sizes B=%d T=%d H=%d dh=%d ld=%d ldo=%d", B, T, H, dh, ld, ldo))
	}
	if B*T*H*dh == 0 {
		return
	}
	need := (B*T-1)*ld + H*dh
	needO := (B*T-1)*ldo + H*dh
	if len(q) < need || len(k) < need || len(v) < need || len(out) < needO || len(lse) < B*H*T {
		panic(fmt.Sprintf("kernels: attention: slices too short for B=%d T=%d H=%d dh=%d ld=%d ldo=%d", B, T, H, dh, ld, ldo))
	}
}

type attnArgs struct {
	out, lse, q, k, v    []float32
	dq, dk, dv, dout     []float32
	B, T, H, dh, ld, ldo int
	backward             bool
	round                bool // BF16: products on rounded inputs
}

type attnJob struct {
	rowsJob
	a attnArgs
}

// attnBuf is the scratch of one thread: a strip of scores and one of
// their gradients.
type attnBuf struct {
	s, dp, inv       []float32
	kt, vt, vv       []float32 // packed k and v of the current head
	kt16, vt16, vv16 []uint16  // the same for a bfloat16 kernel
}

var (
	attnJobs = newFreeList[attnJob](8)
	attnBufs = newFreeList[attnBuf](8)
)

func (j *attnJob) RunPart(i, n int) {
	lo, hi := splitRange(j.rows, 1, i, n)
	buf := attnBufs.get()
	a := &j.a
	buf.s = grow(buf.s, attnBlock*a.T)
	buf.inv = grow(buf.inv, attnBlock)
	if a.backward {
		buf.dp = grow(buf.dp, attnBlock*a.T)
	}
	for bh := lo; bh < hi; bh++ {
		if a.backward {
			attnHeadBackward(a, buf, bh/a.H, bh%a.H)
		} else {
			attnHeadForward(a, buf, bh/a.H, bh%a.H)
		}
	}
	attnBufs.put(buf)
}

// packedB is one operand B of a head's products, packed once for all its
// query blocks (when it fits one k block of the kernel), or left as is.
type packedB struct {
	kern   *microKernel
	transB bool
	round  bool
	b      []float32
	ldb    int
	p      []float32 // packed panels, nil when not packed
	stride int
	p16    []uint16 // bfloat16 panels for activeBF16() (round with a bf16 kernel)
}

// pack packs op(B) (k × n) into dst when k ≤ kc (rounded to bfloat16 if
// round is set), or, with round and a bfloat16 kernel, into dst16 in its
// layout.
func (pb *packedB) pack(dst *[]float32, dst16 *[]uint16, kern *microKernel, round, transB bool, b []float32, ldb, k, n int) {
	*pb = packedB{kern: kern, transB: transB, round: round, b: b, ldb: ldb}
	if round && activeBF16() != nil {
		ks, np := ceilDiv(k, bfStep), ceilDiv(n, bfCols)
		pb.stride = ks * bfBlock
		*dst16 = growU16(*dst16, np*pb.stride)
		g := gemmArgs{transB: transB, b: b, ldb: ldb, k: k, n: n}
		packPanelsBF16(*dst16, pb.stride, &g, 0, np, ks)
		pb.p16 = *dst16
		return
	}
	if k > kern.kc {
		return
	}
	size := ceilDiv(n, kern.nr) * kern.nr * k
	*dst = grow(*dst, size)
	g := gemmArgs{transB: transB, b: b, ldb: ldb, k: k, n: n}
	packB(*dst, &g, 0, k, 0, n, kern.nr)
	if round {
		roundBF16Slice((*dst)[:size])
	}
	pb.p, pb.stride = *dst, k*kern.nr
}

// mul computes c = alpha·op(A)·op(B)[:k, :n] + beta·c on the calling goroutine.
func (pb *packedB) mul(transA bool, m, n, k int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int) {
	if pb.p16 != nil {
		g := gemmArgs{transA: transA, transB: pb.transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: pb.b, ldb: pb.ldb,
			beta: beta, c: c, ldc: ldc, bPacked16: pb.p16, bStride16: pb.stride}
		if err := g.check(); err != nil {
			panic(err)
		}
		gemmBF16With(activeBF16(), 1, &g)
		return
	}
	if pb.p == nil {
		gemmSerial(pb.round, transA, pb.transB, m, n, k, alpha, a, lda, pb.b, pb.ldb, beta, c, ldc)
		return
	}
	g := gemmArgs{transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, beta: beta, c: c, ldc: ldc,
		bPacked: pb.p, bStride: pb.stride, round: pb.round}
	g.transB, g.b, g.ldb = pb.transB, pb.b, pb.ldb
	if err := g.check(); err != nil {
		panic(err)
	}
	gemmWith(pb.kern, 1, &g)
}

func attnHeadForward(a *attnArgs, buf *attnBuf, b, h int) {
	T, dh, ld, ldo := a.T, a.dh, a.ld, a.ldo
	scale := float32(1 / math.Sqrt(float64(dh)))
	qh := a.q[b*T*ld+h*dh:]
	kh := a.k[b*T*ld+h*dh:]
	vh := a.v[b*T*ld+h*dh:]
	oh := a.out[b*T*ldo+h*dh:]
	lse := a.lse[(b*a.H+h)*T : (b*a.H+h+1)*T]
	kern := activeKernel
	var kt, vv packedB
	kt.pack(&buf.kt, &buf.kt16, kern, a.round, true, kh, ld, dh, T)  // kᵀ (dh × T)
	vv.pack(&buf.vv, &buf.vv16, kern, a.round, false, vh, ld, T, dh) // v (T × dh)
	for i0 := 0; i0 < T; i0 += attnBlock {
		i1 := min(i0+attnBlock, T)
		rows, n := i1-i0, i1
		s := buf.s[:rows*n]
		// s = scale·q[i0:i1]·k[0:n]ᵀ
		kt.mul(false, rows, n, dh, scale, qh[i0*ld:], ld, 0, s, n)
		inv := buf.inv[:rows]
		for r := 0; r < rows; r++ {
			t := i0 + r
			row := s[r*n : r*n+t+1]
			mx := vmax(row)
			sum := expSum(row, row, mx, 1)
			lse[t] = mx + float32(math.Log(float64(sum)))
			inv[r] = 1 / sum
			clear(s[r*n+t+1 : (r+1)*n])
		}
		// out[i0:i1] = P·v[0:n], P normalised afterwards row by row
		vv.mul(false, rows, dh, n, 1, s, n, 0, oh[i0*ldo:], ldo)
		for r, f := range inv {
			o := oh[(i0+r)*ldo : (i0+r)*ldo+dh]
			for c := range o {
				o[c] *= f
			}
		}
	}
}

func attnHeadBackward(a *attnArgs, buf *attnBuf, b, h int) {
	T, dh, ld, ldo := a.T, a.dh, a.ld, a.ldo
	scale := float32(1 / math.Sqrt(float64(dh)))
	off, offO := b*T*ld+h*dh, b*T*ldo+h*dh
	qh, kh, vh := a.q[off:], a.k[off:], a.v[off:]
	dqh, dkh, dvh := a.dq[off:], a.dk[off:], a.dv[off:]
	oh, doh := a.out[offO:], a.dout[offO:]
	lse := a.lse[(b*a.H+h)*T : (b*a.H+h+1)*T]
	kern := activeKernel
	var kt, vt, kk packedB
	kt.pack(&buf.kt, &buf.kt16, kern, a.round, true, kh, ld, dh, T)  // kᵀ (dh × T)
	vt.pack(&buf.vt, &buf.vt16, kern, a.round, true, vh, ld, dh, T)  // vᵀ (dh × T)
	kk.pack(&buf.vv, &buf.vv16, kern, a.round, false, kh, ld, T, dh) // k (T × dh)
	for i0 := 0; i0 < T; i0 += attnBlock {
		i1 := min(i0+attnBlock, T)
		rows, n := i1-i0, i1
		p := buf.s[:rows*n]
		dp := buf.dp[:rows*n]
		// p = exp(scale·q·kᵀ − lse), dp = dout·vᵀ
		kt.mul(false, rows, n, dh, scale, qh[i0*ld:], ld, 0, p, n)
		vt.mul(false, rows, n, dh, 1, doh[i0*ldo:], ldo, 0, dp, n)
		for r := 0; r < rows; r++ {
			t := i0 + r
			o := oh[t*ldo : t*ldo+dh]
			do := doh[t*ldo : t*ldo+dh]
			do = do[:len(o)]
			var d float32
			for c, x := range o {
				d += x * do[c]
			}
			expGrad(p[r*n:r*n+t+1], dp[r*n:r*n+t+1], lse[t], d)
			clear(p[r*n+t+1 : (r+1)*n])
			clear(dp[r*n+t+1 : (r+1)*n])
		}
		// dv[0:n] += pᵀ·dout[i0:i1]; dq[i0:i1] += scale·dS·k[0:n]; dk[0:n] += scale·dSᵀ·q[i0:i1]
		gemmSerial(a.round, true, false, n, dh, rows, 1, p, n, doh[i0*ldo:], ldo, 1, dvh, ld)
		kk.mul(false, rows, dh, n, scale, dp, n, 1, dqh[i0*ld:], ld)
		gemmSerial(a.round, true, false, n, dh, rows, scale, dp, n, qh[i0*ld:], ld, 1, dkh, ld)
	}
}

// gemmSerial is Gemm on the calling goroutine only, for kernels that are
// already split over threads; round rounds both inputs to bfloat16.
func gemmSerial(round, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, round: round}
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
	if round && activeBF16() != nil {
		gemmBF16With(activeBF16(), 1, &g)
		return
	}
	gemmWith(activeKernel, 1, &g)
}

// causalAttentionRef64 is the reference of CausalAttentionForward, with
// the full score row, in float64; it returns out (B, T, H·dh) and lse
// (B, H, T):
//
//	for b, h, t: p_s = exp(scale·q_t·k_s) / Σ_{s'≤t} exp(scale·q_t·k_s'), s ≤ t; out_t = Σ_s p_s·v_s
func causalAttentionRef64(q, k, v []float32, B, T, H, dh, ld int) (out, lse []float64) {
	d := H * dh
	out = make([]float64, B*T*d)
	lse = make([]float64, B*H*T)
	scale := 1 / math.Sqrt(float64(dh))
	sc := make([]float64, T)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for t := 0; t < T; t++ {
				qt := q[(b*T+t)*ld+h*dh:][:dh]
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					ks := k[(b*T+s)*ld+h*dh:][:dh]
					var dot float64
					for c := range qt {
						dot += float64(qt[c]) * float64(ks[c])
					}
					sc[s] = dot * scale
					mx = math.Max(mx, sc[s])
				}
				var sum float64
				for s := 0; s <= t; s++ {
					sc[s] = math.Exp(sc[s] - mx)
					sum += sc[s]
				}
				lse[(b*H+h)*T+t] = mx + math.Log(sum)
				o := out[(b*T+t)*d+h*dh:][:dh]
				for s := 0; s <= t; s++ {
					w := sc[s] / sum
					vs := v[(b*T+s)*ld+h*dh:][:dh]
					for c := range o {
						o[c] += w * float64(vs[c])
					}
				}
			}
		}
	}
	return out, lse
}
