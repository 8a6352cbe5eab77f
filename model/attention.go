package model

import (
	"math"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// attnBlock is the row-block size of the causal attention: block i of
// queries is multiplied only with keys 0..end of the block, which skips most
// of the masked upper triangle while keeping the matmuls in Gemm.
const attnBlock = 32

type attnArgs struct {
	out, att, qkv, cos, sin, dqkv, datt, dout []float32
	T, C, NH                                  int
}

var attnFwdJobs, attnBwdJobs rangeJobs[attnArgs]

// attentionForward runs causal multi-head attention with RoPE on q and k.
// qkv holds per token q | k | v, each (NH, HS) head by head; RoPE is
// applied to q and k in place, so after the call qkv caches the rotated q
// and k that the backward pass needs. att caches the softmax.
//
//	out (B, T, C), att (B, NH, T, T), qkv (B, T, 3C), cos, sin (≥T, HS/2)
func attentionForward(out, att, qkv, cos, sin []float32, B, T, C, NH int) {
	attnFwdJobs.run(B*NH, attnArgs{out: out, att: att, qkv: qkv, cos: cos, sin: sin, T: T, C: C, NH: NH}, attentionForwardHeads)
}

func attentionForwardHeads(s *attnArgs, lo, hi int) {
	out, att, qkv, cos, sin, T, C, NH := s.out, s.att, s.qkv, s.cos, s.sin, s.T, s.C, s.NH
	HS := C / NH
	C3 := 3 * C
	scale := float32(1 / math.Sqrt(float64(HS)))
	for bh := lo; bh < hi; bh++ {
		b, h := bh/NH, bh%NH
		q := qkv[b*T*C3+h*HS:]
		k := q[C:]
		v := q[2*C:]
		a := att[bh*T*T : (bh+1)*T*T]
		o := out[b*T*C+h*HS:]
		ropeForward(q, C3, T, HS, 0, cos, sin)
		ropeForward(k, C3, T, HS, 0, cos, sin)
		for i0 := 0; i0 < T; i0 += attnBlock {
			i1 := min(i0+attnBlock, T)
			// a[i0:i1, 0:i1] = scale · q[i0:i1]·k[0:i1]ᵀ
			kernels.Gemm(false, true, i1-i0, i1, HS, scale, q[i0*C3:], C3, k, C3, 0, a[i0*T:], T)
			for i := i0; i < i1; i++ {
				causalSoftmax(a[i*T:(i+1)*T], i)
			}
			// o[i0:i1] = a[i0:i1, 0:i1]·v[0:i1]
			kernels.Gemm(false, false, i1-i0, HS, i1, 1, a[i0*T:], T, v, C3, 0, o[i0*C:], C)
		}
	}
}

// causalSoftmax turns row[0..i] into a softmax and zeroes row[i+1:].
func causalSoftmax(row []float32, i int) {
	mx := float32(math.Inf(-1))
	for _, v := range row[:i+1] {
		mx = max(mx, v)
	}
	var sum float32
	for j, v := range row[:i+1] {
		e := kernels.Expf(v - mx)
		row[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range row[:i+1] {
		row[j] *= inv
	}
	clear(row[i+1:])
}

// attentionBackward writes into dqkv (overwriting it) the gradient of the
// pre-RoPE q, k, v. datt is scratch of the size of att.
//
//	dqkv (B, T, 3C), datt (B, NH, T, T), dout (B, T, C),
//	qkv (B, T, 3C) as left by forward, att (B, NH, T, T), cos, sin (≥T, HS/2)
func attentionBackward(dqkv, datt, dout, qkv, att, cos, sin []float32, B, T, C, NH int) {
	attnBwdJobs.run(B*NH, attnArgs{dqkv: dqkv, datt: datt, dout: dout, qkv: qkv, att: att, cos: cos, sin: sin, T: T, C: C, NH: NH}, attentionBackwardHeads)
}

func attentionBackwardHeads(s *attnArgs, lo, hi int) {
	dqkv, datt, dout, qkv, att, cos, sin, T, C, NH := s.dqkv, s.datt, s.dout, s.qkv, s.att, s.cos, s.sin, s.T, s.C, s.NH
	HS := C / NH
	C3 := 3 * C
	scale := float32(1 / math.Sqrt(float64(HS)))
	for bh := lo; bh < hi; bh++ {
		b, h := bh/NH, bh%NH
		q := qkv[b*T*C3+h*HS:]
		k := q[C:]
		v := q[2*C:]
		dq := dqkv[b*T*C3+h*HS:]
		dk := dq[C:]
		dv := dq[2*C:]
		a := att[bh*T*T : (bh+1)*T*T]
		da := datt[bh*T*T : (bh+1)*T*T]
		do := dout[b*T*C+h*HS:]
		for t := 0; t < T; t++ {
			for _, r := range [3][]float32{dq, dk, dv} {
				clear(r[t*C3 : t*C3+HS])
			}
		}
		// dv += aᵀ·do (a is zero above the diagonal)
		kernels.Gemm(true, false, T, HS, T, 1, a, T, do, C, 1, dv, C3)
		for i0 := 0; i0 < T; i0 += attnBlock {
			i1 := min(i0+attnBlock, T)
			// da[i0:i1, 0:i1] = do[i0:i1]·v[0:i1]ᵀ
			kernels.Gemm(false, true, i1-i0, i1, HS, 1, do[i0*C:], C, v, C3, 0, da[i0*T:], T)
			for i := i0; i < i1; i++ {
				ar := a[i*T : i*T+i+1]
				dr := da[i*T : i*T+i+1]
				var dot float32
				for j, p := range ar {
					dot += p * dr[j]
				}
				for j, p := range ar {
					dr[j] = scale * p * (dr[j] - dot)
				}
				clear(da[i*T+i+1 : (i+1)*T])
			}
		}
		// dq += da·k, dk += daᵀ·q (da is the gradient of the scaled scores, times scale)
		kernels.Gemm(false, false, T, HS, T, 1, da, T, k, C3, 1, dq, C3)
		kernels.Gemm(true, false, T, HS, T, 1, da, T, q, C3, 1, dk, C3)
		ropeBackward(dq, C3, T, HS, 0, cos, sin)
		ropeBackward(dk, C3, T, HS, 0, cos, sin)
	}
}
