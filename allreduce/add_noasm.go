//go:build !amd64 || noasm

package allreduce

func add32(dst, src []float32)                     { add32Go(dst, src) }
func addScale32(dst, src []float32, scale float32) { addScale32Go(dst, src, scale) }
