package allreduce

import (
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultChunkBytes   = 1 << 20  // 1 MiB: the measured sweet spot for grpc-go on loopback
	DefaultBucketBytes  = 25 << 20 // PyTorch DDP's bucket_cap_mb
	DefaultCloseTimeout = 5 * time.Second
	minChunkBytes       = 64
)

// Config describes one ring generation as membership decided it.
type Config struct {
	// Generation (epoch) of the membership; every frame carries it.
	Generation uint64
	// Rank of this member, 0 ≤ Rank < WorldSize.
	Rank      int
	WorldSize int
	// Peers are the addresses of all ranks in ring order (len WorldSize).
	// Alternatively set only Right, the address of rank (Rank+1) mod
	// WorldSize. Unused for WorldSize 1 and by the in-memory transport.
	Peers []string
	Right string
	// ChunkBytes is the size of the pipelined chunks (default 1 MiB);
	// rounded down to a multiple of 8.
	ChunkBytes int
	// CloseTimeout bounds a graceful Close (default 5 s).
	CloseTimeout time.Duration
	// Wire is how float32 operations travel (float64 ones always travel
	// as float64): WireFP32 (the default) or WireBF16.
	Wire Wire
}

// Wire is the format of float32 data between ranks.
type Wire int

const (
	// WireFP32 sends float32: the result is exact (one fixed order of
	// float32 additions).
	WireFP32 Wire = iota
	// WireBF16 sends bfloat16, half the bytes: every hop of the
	// reduce-scatter decodes what arrives, adds its own float32 values in
	// float32 and encodes the partial sum again; the rank that completes a
	// segment rounds it to bfloat16 before the all-gather, so every rank
	// holds the same bits. Each result carries the rounding error of
	// W bfloat16 roundings of partial sums (at most 2⁻⁸ relative each).
	WireBF16
)

// String returns "fp32" or "bf16", the spelling of the job file.
func (w Wire) String() string {
	switch w {
	case WireFP32:
		return "fp32"
	case WireBF16:
		return "bf16"
	}
	return fmt.Sprintf("Wire(%d)", int(w))
}

// ParseWire parses "fp32" or "bf16".
func ParseWire(s string) (Wire, error) {
	switch s {
	case "fp32":
		return WireFP32, nil
	case "bf16":
		return WireBF16, nil
	}
	return 0, fmt.Errorf("all-reduce wire %q is neither fp32 nor bf16", s)
}

func (c *Config) setDefaults() {
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	c.ChunkBytes &^= 7
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
}

// Validate reports the first impossible value, naming its field.
func (c Config) Validate() error {
	switch {
	case c.WorldSize < 1:
		return fmt.Errorf("allreduce config: WorldSize %d: must be ≥ 1", c.WorldSize)
	case c.Rank < 0 || c.Rank >= c.WorldSize:
		return fmt.Errorf("allreduce config: Rank %d: must be in [0, %d)", c.Rank, c.WorldSize)
	case len(c.Peers) != 0 && len(c.Peers) != c.WorldSize:
		return fmt.Errorf("allreduce config: Peers has %d addresses, want WorldSize %d", len(c.Peers), c.WorldSize)
	case c.ChunkBytes != 0 && c.ChunkBytes < minChunkBytes:
		return fmt.Errorf("allreduce config: ChunkBytes %d: must be ≥ %d", c.ChunkBytes, minChunkBytes)
	case c.CloseTimeout < 0:
		return fmt.Errorf("allreduce config: CloseTimeout %v: must be ≥ 0", c.CloseTimeout)
	case c.Wire != WireFP32 && c.Wire != WireBF16:
		return fmt.Errorf("allreduce config: Wire %v: must be WireFP32 or WireBF16", c.Wire)
	}
	return nil
}

func (c Config) member() Member {
	m := Member{Generation: c.Generation, Rank: c.Rank, WorldSize: c.WorldSize, Right: c.Right, CloseTimeout: c.CloseTimeout}
	if len(c.Peers) == c.WorldSize {
		m.Right = c.Peers[(c.Rank+1)%c.WorldSize]
	}
	return m
}
