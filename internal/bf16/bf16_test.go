package bf16

import (
	"math"
	"testing"
)

func TestFromFloat32(t *testing.T) {
	f := math.Float32frombits
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"minus two", -2, 0xc000},
		{"exact", f(0x3f810000), 0x3f81},
		{"below half rounds down", f(0x3f807fff), 0x3f80},
		{"half to even (down)", f(0x3f808000), 0x3f80},
		{"half to even (up)", f(0x3f818000), 0x3f82},
		{"above half rounds up", f(0x3f808001), 0x3f81},
		{"carry into exponent", f(0x3fffffff), 0x4000},
		{"overflow to infinity", f(0x7f7fffff), 0x7f80},
		{"infinity", float32(math.Inf(-1)), 0xff80},
		{"zero", 0, 0},
		{"negative zero", f(0x80000000), 0x8000},
		{"subnormal to zero", f(0x007fffff), 0x0000},
		{"negative subnormal to zero", f(0x80000001), 0x8000},
		{"smallest normal", f(0x00800000), 0x0080},
		{"NaN stays quiet NaN", f(0x7fc00001), 0x7fc0},
		{"signalling NaN is quieted", f(0x7f800001), 0x7fc0},
		{"NaN payload kept", f(0xff912345), 0xffd1},
	}
	for _, c := range cases {
		if got := FromFloat32(c.in); got != c.want {
			t.Errorf("%s: FromFloat32(%#08x) = %#04x, want %#04x", c.name, math.Float32bits(c.in), got, c.want)
		}
	}
}

// TestRoundNearest checks on a sweep of values that Round picks the nearer
// of the two neighbouring bfloat16 values (the even one on a tie).
func TestRoundNearest(t *testing.T) {
	for b := uint32(0x00800000); b < 0x7f7f0000; b += 0x3fff {
		x := math.Float32frombits(b)
		r := Round(x)
		lo := math.Float32frombits(b &^ 0xffff)
		hi := math.Float32frombits(b&^0xffff + 0x10000)
		dlo, dhi := float64(x)-float64(lo), float64(hi)-float64(x)
		want := lo
		if dhi < dlo || (dhi == dlo && (b>>16)&1 == 1) {
			want = hi
		}
		if r != want {
			t.Fatalf("Round(%#08x) = %#08x, want %#08x", b, math.Float32bits(r), math.Float32bits(want))
		}
	}
}
