//go:build !amd64 || noasm

package kernels

const vecGo = 0

func maxVecLevel() int { return vecGo }

func vmax(x []float32) float32                            { return vmaxGo(x) }
func expSum(dst, src []float32, sub, mul float32) float32 { return expSumGo(dst, src, sub, mul) }
func sumExp(src []float32, sub float32) float32           { return sumExpGo(src, sub) }
func expGrad(p, dp []float32, lse, d float32)             { expGradGo(p, dp, lse, d) }
func swigluRow(out, a, b []float32)                       { swigluRowGo(out, a, b) }
func swigluGradRow(da, db, d, a, b []float32)             { swigluGradRowGo(da, db, d, a, b) }

func adamwRow(p, g, m, v []float32, k *[8]float32) (rest int) { return len(p) }

func ropeRowsAsm(x []float32, ld, rows, heads, dh int, cos, sin []float32, sign float32) bool {
	return false
}
