//go:build !amd64 || noasm

package kernels

// setVecLevel and setPackMode do nothing: this build has only the Go level.
func setVecLevel(int) {}
func setPackMode(int) {}
