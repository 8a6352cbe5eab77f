//go:build !amd64 || noasm

package allreduce

func add32(dst, src []float32)                              { add32Go(dst, src) }
func addScale32(dst, src []float32, scale float32)          { addScale32Go(dst, src, scale) }
func encode16(dst []uint16, src []float32)                  { encode16Go(dst, src) }
func decode16(dst []float32, src []uint16)                  { decode16Go(dst, src) }
func add16(dst []float32, src []uint16)                     { add16Go(dst, src) }
func addRound16(dst []float32, src []uint16, scale float32) { addRound16Go(dst, src, scale) }
