//go:build amd64 && !noasm

package kernels

// setVecLevel and setPackMode select the row primitives and the packers,
// for tests that run every level this CPU has.
func setVecLevel(level int) { vecLevel = level }
func setPackMode(mode int)  { packMode = mode }
