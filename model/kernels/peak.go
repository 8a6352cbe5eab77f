package kernels

import (
	"runtime"
	"sync"
	"time"
)

// peakLoop is a register-only loop of the instruction a kernel is built
// on: run(n) does n iterations of flops floating-point operations.
type peakLoop struct {
	what  string
	flops float64
	run   func(n int)
}

// PeakGFLOPS returns the peak rate of one core, in GFLOP/s, for products
// of precision p on this CPU and build: measured once per process (about
// 50 ms) with a short loop of independent operations of the instruction
// the kernels of p use (fp32 FMA, VDPBF16PS or AMX TDPBF16PS), and a
// description of that loop. It is the denominator of an honest MFU: what
// this core can do, not what a feature flag suggests.
func PeakGFLOPS(p Precision) (gflops float64, how string) {
	r := peaks[p]()
	return r.gflops, r.how
}

type peakResult struct {
	gflops float64
	how    string
}

var peaks = [...]func() peakResult{
	FP32: sync.OnceValue(func() peakResult { return measurePeak(peakLoopFor(FP32)) }),
	BF16: sync.OnceValue(func() peakResult { return measurePeak(peakLoopFor(BF16)) }),
}

func measurePeak(l peakLoop) peakResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := 1 << 10
	best := 0.0
	for tries := 0; tries < 6; {
		start := time.Now()
		l.run(n)
		el := time.Since(start).Seconds()
		if el < 5e-3 {
			n *= 4
			continue
		}
		best = max(best, l.flops*float64(n)/el/1e9)
		tries++
	}
	return peakResult{gflops: best, how: l.what}
}

// peakKernelGo times the pure-Go micro-kernel on data in L1: the peak of
// a build without assembly.
func peakKernelGo() peakLoop {
	const k = 256
	a, b := make([]float32, 4*k), make([]float32, 8*k)
	c := make([]float32, 4*8)
	return peakLoop{
		what:  "the pure-Go 4×8 micro-kernel on data in L1",
		flops: 2 * 4 * 8 * k,
		run: func(n int) {
			for range n {
				gemmKernelGo(k, a, b, c, 8, 1)
			}
		},
	}
}
