package allreduce

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAllReduce measures the ring over each transport; bytes/s is
// the algorithm bandwidth (buffer bytes per all-reduce time).
func BenchmarkAllReduce(b *testing.B) {
	for _, kind := range transportKinds {
		for _, w := range []int{2, 4} {
			for _, size := range []int{1 << 20, 64 << 20} {
				for _, wire := range []Wire{WireFP32, WireBF16} {
					b.Run(fmt.Sprintf("%s/W=%d/%dMiB/%s", kind.name, w, size>>20, wire), func(b *testing.B) {
						c := kind.build(b, Config{Generation: 1, WorldSize: w, Wire: wire}, nil)
						bufs := make([][]float32, w)
						for r := range bufs {
							bufs[r] = make([]float32, size/4)
							for i := range bufs[r] {
								bufs[r][i] = float32(r) // fault the pages in before timing
							}
						}
						ctx := context.Background()
						b.SetBytes(int64(size))
						b.ResetTimer()
						for range b.N {
							for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) }) {
								if err != nil {
									b.Fatalf("rank %d: %v", rank, err)
								}
							}
						}
					})
				}
			}
		}
	}
}

// BenchmarkSmall measures the latency of reducing a few float64s (the
// loss and token counts of a step).
func BenchmarkSmall(b *testing.B) {
	for _, kind := range transportKinds {
		for _, w := range []int{2, 4} {
			b.Run(fmt.Sprintf("%s/W=%d", kind.name, w), func(b *testing.B) {
				c := kind.build(b, Config{Generation: 1, WorldSize: w}, nil)
				bufs := make([][]float64, w)
				for r := range bufs {
					bufs[r] = make([]float64, 3)
				}
				ctx := context.Background()
				b.ResetTimer()
				for range b.N {
					for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduceFloat64(ctx, bufs[rank], Sum) }) {
						if err != nil {
							b.Fatalf("rank %d: %v", rank, err)
						}
					}
				}
			})
		}
	}
}
