//go:build !amd64 || noasm

package kernels

// peakLoopFor is the pure-Go micro-kernel, which runs both precisions in
// this build.
func peakLoopFor(p Precision) peakLoop { return peakKernelGo() }
