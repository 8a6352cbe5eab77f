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
