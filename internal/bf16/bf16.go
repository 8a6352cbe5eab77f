// Package bf16 defines ringtrain's conversion between float32 and
// bfloat16, the upper half of a float32's bits. Every bfloat16 path (the
// GEMM packers of model/kernels, their fp32 emulation, the all-reduce wire)
// rounds the way FromFloat32 does, which is what the x86 instructions
// VCVTNE2PS2BF16 and VCVTNEPS2BF16 do:
//
//   - round to nearest, ties to even;
//   - zeros and float32 subnormals become a zero of the same sign;
//   - infinities stay infinities, and finite values that round past the
//     largest bfloat16 become infinities;
//   - NaNs stay NaNs (quiet, sign and upper payload kept).
//
// See docs/precision.md.
package bf16

import "math"

// FromFloat32 rounds x to bfloat16.
func FromFloat32(x float32) uint16 {
	b := math.Float32bits(x)
	switch {
	case b&0x7f800000 == 0: // zero or subnormal
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000: // NaN
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// ToFloat32 widens h to float32 (exactly).
func ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Round returns x rounded to the nearest bfloat16, as a float32.
func Round(x float32) float32 { return ToFloat32(FromFloat32(x)) }
