//go:build amd64 && !noasm

package kernels

// peakLoopFor is the loop of the instruction behind precision p's active
// kernel.
func peakLoopFor(p Precision) peakLoop {
	if p == BF16 {
		switch activeBF16() {
		case kernelAMX:
			return peakLoop{what: "4 independent AMX TDPBF16PS (16×16×32) per iteration",
				flops: 4 * 2 * 16 * 16 * 32, run: func(n int) { peakAMX(n, &amxConfig[0]) }}
		case kernelDPBF16:
			return peakLoopDPBF16
		}
		// no bf16 kernel: the emulation runs on the fp32 kernels
	}
	return peakLoopFP32()
}

// peakLoopFP32 is the loop of the FMA behind the active float32 kernel.
func peakLoopFP32() peakLoop {
	switch activeKernel {
	case kernel14x32AVX512:
		return peakLoop{what: "24 independent 512-bit VFMADD231PS per iteration", flops: 24 * 32, run: peakFMA512}
	case kernel6x16AVX2:
		return peakLoop{what: "24 independent 256-bit VFMADD231PS per iteration", flops: 24 * 16, run: peakFMA256}
	}
	return peakKernelGo()
}

var peakLoopDPBF16 = peakLoop{what: "24 independent 512-bit VDPBF16PS per iteration", flops: 24 * 64, run: peakDPBF16}
