//go:build !amd64 || noasm

package kernels

// availableBF16Kernels lists no kernel in this build: GemmBF16 rounds into
// the float32 kernels.
func availableBF16Kernels() []*bf16Kernel { return nil }

// fastestBF16Kernel returns nil: GemmBF16 rounds into the float32 kernels.
func fastestBF16Kernel() *bf16Kernel { return nil }

// packStripAsm reports that no assembly packer exists in this build.
func packStripAsm(dst []uint16, g *gemmArgs, i, rows, p0, ks int) bool { return false }

// packPanelsAsm reports that no assembly packer exists in this build.
func packPanelsAsm(dst []uint16, pstride int, g *gemmArgs, q0, q1, ks int) bool { return false }

// roundBF16Asm rounds nothing in this build.
func roundBF16Asm(x []float32) int { return 0 }
