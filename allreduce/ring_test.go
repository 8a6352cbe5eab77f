package allreduce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// inputs returns W seeded random vectors of length n.
func inputs(seed uint64, w, n int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	xs := make([][]float32, w)
	for r := range xs {
		xs[r] = make([]float32, n)
		for i := range xs[r] {
			xs[r][i] = float32(rng.NormFloat64())
		}
	}
	return xs
}

// reference computes what the ring must produce, bit for bit: segment c is
// summed from rank c around the ring, then scaled by 1/W for a mean.
func reference(xs [][]float32, o Op) []float32 {
	w, n := len(xs), len(xs[0])
	s := schedule{n: n, w: w}
	out := make([]float32, n)
	for c := range w {
		off, cnt := s.segment(c)
		for i := off; i < off+cnt; i++ {
			acc := xs[c][i]
			for k := 1; k < w; k++ {
				acc = xs[(c+k)%w][i] + acc
			}
			if o == Mean && w > 1 {
				acc *= 1 / float32(w)
			}
			out[i] = acc
		}
	}
	return out
}

func clone(xs [][]float32) [][]float32 {
	out := make([][]float32, len(xs))
	for i, x := range xs {
		out[i] = append([]float32(nil), x...)
	}
	return out
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %v (%#x), want %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAllReduce(t *testing.T) {
	for _, kind := range transportKinds {
		for _, w := range []int{1, 2, 3, 4, 5} {
			t.Run(fmt.Sprintf("%s/W=%d", kind.name, w), func(t *testing.T) {
				// 64-byte chunks: 16 float32s, so most lengths span several.
				c := kind.build(t, Config{Generation: 3, WorldSize: w, ChunkBytes: 64}, nil)
				ctx := testCtx(t)
				for i, n := range []int{0, 1, w - 1, w, w + 1, 17, 100, 1031} {
					for _, o := range []Op{Mean, Sum} {
						xs := inputs(uint64(100*w+i), w, n)
						want := reference(xs, o)
						bufs := clone(xs)
						errs := c.each(func(rank int, r *Ring) error {
							return r.AllReduceOp(ctx, bufs[rank], o)
						})
						for rank, err := range errs {
							if err != nil {
								t.Fatalf("n=%d op=%d rank %d: %v", n, o, rank, err)
							}
							sameBits(t, fmt.Sprintf("n=%d op=%d rank %d", n, o, rank), bufs[rank], want)
						}
						// The mean is the mean, up to float32 rounding.
						for j := 0; o == Mean && j < n; j++ {
							var s float64
							for r := range w {
								s += float64(xs[r][j])
							}
							if d := math.Abs(float64(want[j]) - s/float64(w)); d > 1e-5 {
								t.Fatalf("n=%d element %d: mean %v, float64 mean %v", n, j, want[j], s/float64(w))
							}
						}
					}
				}
			})
		}
	}
}

func TestAllReduceDeterministic(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w, n = 3, 2000
			ctx := testCtx(t)
			var first []float32
			for run := range 2 {
				// Different chunk sizes must not change the bits either.
				c := kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 64 << run}, nil)
				bufs := inputs(42, w, n)
				for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) }) {
					if err != nil {
						t.Fatalf("run %d rank %d: %v", run, rank, err)
					}
				}
				for rank := range w {
					sameBits(t, fmt.Sprintf("run %d rank %d vs rank 0", run, rank), bufs[rank], bufs[0])
				}
				if first == nil {
					first = bufs[0]
				} else {
					sameBits(t, "second run vs first", bufs[0], first)
				}
			}
		})
	}
}

func TestAllReduceFloat64(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w = 4
			c := kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 64}, nil)
			ctx := testCtx(t)
			for _, o := range []Op{Sum, Mean} {
				bufs := make([][]float64, w)
				for r := range bufs {
					// loss, token count, and a third value that needs float64
					bufs[r] = []float64{float64(r) + 0.25, 1000, 1e10 + float64(r)}
				}
				errs := c.each(func(rank int, r *Ring) error { return r.AllReduceFloat64(ctx, bufs[rank], o) })
				want := []float64{0.25 + 1.25 + 2.25 + 3.25, 4000, 4e10 + 6}
				if o == Mean {
					for i := range want {
						want[i] *= 1.0 / w
					}
				}
				for rank, err := range errs {
					if err != nil {
						t.Fatalf("op %d rank %d: %v", o, rank, err)
					}
					for i := range want {
						if bufs[rank][i] != want[i] {
							t.Fatalf("op %d rank %d: %v, want %v", o, rank, bufs[rank], want)
						}
					}
				}
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w = 3
			c := kind.build(t, Config{Generation: 9, WorldSize: w, ChunkBytes: 128}, nil)
			ctx := testCtx(t)
			sizes := []int{300, 7, 7, 1000, 64, 2, 513}
			total := 0
			for _, s := range sizes {
				total += s
			}
			buckets := PlanBuckets(sizes, 1024)
			xs := inputs(5, w, total)
			want := make([]float32, total)
			for _, b := range buckets {
				part := make([][]float32, w)
				for r := range w {
					part[r] = xs[r][b.Off : b.Off+b.Len]
				}
				copy(want[b.Off:], reference(part, Mean))
			}
			bufs := clone(xs)
			losses := make([][]float64, w)
			errs := c.each(func(rank int, r *Ring) error {
				// "backward": buckets become ready from the last one; each is
				// started while later work (here: summing) still goes on.
				hs := make([]*Handle, len(buckets))
				var busy float32
				for i, b := range buckets {
					hs[i] = r.Start(ctx, b.ID, bufs[rank][b.Off:b.Off+b.Len])
					for _, v := range xs[rank][:b.Off] {
						busy += v
					}
				}
				_ = busy
				for i, h := range hs {
					if err := h.Wait(); err != nil {
						return fmt.Errorf("bucket %d: %w", i, err)
					}
				}
				losses[rank] = []float64{float64(rank)}
				return r.AllReduceFloat64(ctx, losses[rank], Mean)
			})
			for rank, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", rank, err)
				}
				sameBits(t, fmt.Sprintf("rank %d", rank), bufs[rank], want)
				if losses[rank][0] != 1 {
					t.Fatalf("rank %d: mean loss %v, want 1", rank, losses[rank][0])
				}
			}
		})
	}
}

// TestRejects checks that a frame that does not fit the schedule fails the
// operation on every rank and is never added.
func TestRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(h *Header)
		want   error
	}{
		{"stale generation", func(h *Header) { h.Generation-- }, ErrStaleGeneration},
		{"newer generation", func(h *Header) { h.Generation++ }, ErrStaleGeneration},
		{"wrong op", func(h *Header) { h.OpSeq++ }, ErrMismatch},
		{"wrong bucket", func(h *Header) { h.Bucket = 7 }, ErrMismatch},
		{"wrong offset", func(h *Header) { h.Offset++ }, ErrProtocol},
		{"wrong step", func(h *Header) { h.Step++ }, ErrProtocol},
	}
	for _, kind := range transportKinds {
		for _, tc := range cases {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				const w, n = 3, 200
				// Rank 0 corrupts its second frame of step 1 of the second
				// operation.
				wrap := func(rank int, tr Transport) Transport {
					if rank != 0 {
						return tr
					}
					step1 := 0
					return wrapTransport{tr, func(l Link) Link {
						return &hookLink{Link: l, onSend: func(_ int, f *OutFrame) {
							if f.Header.OpSeq == 1 && f.Header.Step == 1 {
								if step1++; step1 == 2 {
									tc.mutate(&f.Header)
								}
							}
						}}
					}}
				}
				c := kind.build(t, Config{Generation: 5, WorldSize: w, ChunkBytes: 64}, wrap)
				ctx := testCtx(t)
				bufs := inputs(1, w, n)
				for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) }) {
					if err != nil {
						t.Fatalf("first op, rank %d: %v", rank, err)
					}
				}
				errs := c.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) })
				for rank, err := range errs {
					if !errors.Is(err, ErrBroken) {
						t.Fatalf("rank %d: err %v, want ErrBroken", rank, err)
					}
				}
				if !errors.Is(errs[1], tc.want) {
					t.Fatalf("rank 1 (receiver of the bad frame): %v, want %v", errs[1], tc.want)
				}
				// The ring stays broken.
				if err := c.rings[1].AllReduce(ctx, bufs[1]); !errors.Is(err, ErrBroken) {
					t.Fatalf("after failure: %v, want ErrBroken", err)
				}
			})
		}
	}
}

func TestMismatchedCalls(t *testing.T) {
	cases := []struct {
		name string
		n    func(rank int) int
		bkt  func(rank int) int
	}{
		{"length", func(rank int) int { return 100 + rank%2 }, func(int) int { return 0 }},
		{"bucket", func(int) int { return 100 }, func(rank int) int { return rank % 2 }},
	}
	for _, kind := range transportKinds {
		for _, tc := range cases {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				c := kind.build(t, Config{Generation: 1, WorldSize: 3, ChunkBytes: 64}, nil)
				ctx := testCtx(t)
				errs := c.each(func(rank int, r *Ring) error {
					return r.Start(ctx, tc.bkt(rank), make([]float32, tc.n(rank))).Wait()
				})
				for rank, err := range errs {
					if !errors.Is(err, ErrBroken) {
						t.Fatalf("rank %d: %v, want ErrBroken", rank, err)
					}
				}
			})
		}
	}
}

// TestKillMidReduce kills one rank after it has received part of an
// operation; every other rank must fail on its own, long before its
// deadline.
func TestKillMidReduce(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w, n, victim = 4, 20000, 2
			var c *cluster
			killed := make(chan struct{})
			wrap := func(rank int, tr Transport) Transport {
				if rank != victim {
					return tr
				}
				return wrapTransport{tr, func(l Link) Link {
					return &hookLink{Link: l, onRecv: func(k int) {
						if k == 10 {
							// die here: no further progress until the
							// kill took effect (a fast victim could
							// otherwise finish the operation first)
							close(killed)
							select {
							case <-c.rings[victim].stopped:
							case <-time.After(5 * time.Second):
							}
						}
					}}
				}}
			}
			c = kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 256}, wrap)
			go func() {
				<-killed
				if c.servers != nil {
					c.servers[victim].Stop() // connections drop as if the process died
				}
				c.rings[victim].fail(errors.New("killed by test"))
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			bufs := inputs(3, w, n)
			errs := c.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) })
			for rank, err := range errs {
				if err == nil {
					t.Fatalf("rank %d: no error", rank)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("rank %d: ran into the deadline instead of noticing the failure: %v", rank, err)
				}
				t.Logf("rank %d: %v", rank, err)
			}
		})
	}
}

// TestDeadline: a rank that never joins the operation makes the others
// fail with their context's error.
func TestDeadline(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w, absent = 3, 1
			c := kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 64}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			errs := c.each(func(rank int, r *Ring) error {
				if rank == absent {
					return nil
				}
				return r.AllReduce(ctx, make([]float32, 1000))
			})
			for rank, err := range errs {
				if rank != absent && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrBroken) {
					t.Fatalf("rank %d: %v, want a deadline error", rank, err)
				}
			}
			// At least one rank saw its own deadline (the others may have
			// seen the ring break first).
			n := 0
			for rank, err := range errs {
				if rank != absent && errors.Is(err, context.DeadlineExceeded) {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no rank reported its deadline: %v", errs)
			}
		})
	}
}

// TestCloseUnblocks: Close fails pending operations with ErrClosed.
func TestCloseUnblocks(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			c := kind.build(t, Config{Generation: 1, WorldSize: 3, ChunkBytes: 64}, nil)
			ctx := testCtx(t)
			h1 := c.rings[0].Start(ctx, 0, make([]float32, 100))
			h2 := c.rings[0].Start(ctx, 1, make([]float32, 100))
			c.rings[0].Close()
			for i, h := range []*Handle{h1, h2} {
				if err := h.Wait(); !errors.Is(err, ErrClosed) {
					t.Fatalf("op %d: %v, want ErrClosed", i, err)
				}
			}
			if err := c.rings[0].AllReduce(ctx, make([]float32, 1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v, want ErrClosed", err)
			}
			// The neighbours learn of it: their next operation fails.
			errs := c.each(func(rank int, r *Ring) error {
				if rank == 0 {
					return nil
				}
				return r.AllReduce(ctx, make([]float32, 100))
			})
			for rank, err := range errs[1:] {
				if err == nil {
					t.Fatalf("rank %d: no error after rank 0 closed", rank+1)
				}
			}
		})
	}
}

// TestGracefulClose: closing idle rings after a successful operation
// leaves its results intact and returns promptly on every rank.
func TestGracefulClose(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w = 3
			c := kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 64}, nil)
			ctx := testCtx(t)
			xs := inputs(8, w, 500)
			bufs := clone(xs)
			for rank, err := range c.each(func(rank int, r *Ring) error {
				if err := r.AllReduce(ctx, bufs[rank]); err != nil {
					return err
				}
				return r.Close()
			}) {
				if err != nil {
					t.Fatalf("rank %d: %v", rank, err)
				}
				sameBits(t, fmt.Sprintf("rank %d", rank), bufs[rank], reference(xs, Mean))
			}
		})
	}
}

func TestStaleGenerationConnect(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			c := kind.build(t, Config{Generation: 7, WorldSize: 2, ChunkBytes: 64}, nil)
			_ = c
			// A member of an older generation cannot join.
			var tr Transport
			m := Member{Generation: 6, Rank: 0, WorldSize: 2}
			switch kind.name {
			case "inmem":
				t.Skip("the in-memory network is per cluster; covered by TestInmemStaleGeneration")
			case "grpc", "grpc-frames":
				tr = NewGRPCTransport()
				m.Right = c.rings[1].cfg.Peers[1]
			case "grpc-tls":
				t.Skip("the stale-generation check is the same with TLS")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := tr.Connect(ctx, m)
			if !errors.Is(err, ErrStaleGeneration) {
				t.Fatalf("Connect(generation 6) to a member at 7: %v, want ErrStaleGeneration", err)
			}
		})
	}
}

func TestInmemStaleGeneration(t *testing.T) {
	net := NewInmemNetwork()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := net.Connect(ctx, Member{Generation: 4, Rank: 0, WorldSize: 2})
		done <- err
	}()
	if _, err := net.Connect(ctx, Member{Generation: 4, Rank: 1, WorldSize: 2}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Connect(ctx, Member{Generation: 3, Rank: 0, WorldSize: 2}); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("Connect(generation 3) after 4: %v, want ErrStaleGeneration", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string // a field name the error must mention; "" = valid
	}{
		{Config{WorldSize: 1}, ""},
		{Config{WorldSize: 0}, "WorldSize"},
		{Config{WorldSize: 2, Rank: 2}, "Rank"},
		{Config{WorldSize: 2, Rank: -1}, "Rank"},
		{Config{WorldSize: 2, Peers: []string{"a"}}, "Peers"},
		{Config{WorldSize: 2, ChunkBytes: 8}, "ChunkBytes"},
		{Config{WorldSize: 2, CloseTimeout: -1}, "CloseTimeout"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestReconnectSameGeneration: after every member closed its ring, a new
// ring of the same generation connects again over the same transports.
func TestReconnectSameGeneration(t *testing.T) {
	const w = 3
	trs := make([]Transport, w)
	addrs := make([]string, w)
	for i := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr := NewGRPCTransport()
		srv := grpc.NewServer(ServerOptions()...)
		tr.Register(srv)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		trs[i], addrs[i] = tr, lis.Addr().String()
	}
	ctx := testCtx(t)
	for round := range 2 {
		c := connectAll(t, Config{Generation: 4, WorldSize: w, Peers: addrs, ChunkBytes: 64}, trs, nil)
		xs := inputs(uint64(round), w, 100)
		bufs := clone(xs)
		for rank, err := range c.each(func(rank int, r *Ring) error {
			if err := r.AllReduce(ctx, bufs[rank]); err != nil {
				return err
			}
			return r.Close()
		}) {
			if err != nil {
				t.Fatalf("round %d rank %d: %v", round, rank, err)
			}
			sameBits(t, fmt.Sprintf("round %d rank %d", round, rank), bufs[rank], reference(xs, Mean))
		}
	}
}

// TestRandomSequence runs a seeded random mix of operations (lengths,
// reductions, float32 buckets and float64 vectors, several queued at once)
// and checks every result bit for bit.
func TestRandomSequence(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w, ops = 3, 40
			c := kind.build(t, Config{Generation: 2, WorldSize: w, ChunkBytes: 96}, nil)
			ctx := testCtx(t)
			rng := rand.New(rand.NewPCG(2024, 1))
			type plan struct {
				n     int
				o     Op
				f64   bool
				batch int // ops started together before waiting
			}
			plans := make([]plan, ops)
			for i := range plans {
				plans[i] = plan{n: rng.IntN(300), o: Op(rng.IntN(2)), f64: rng.IntN(4) == 0, batch: 1 + rng.IntN(4)}
			}
			xs := make([][][]float32, ops)
			for i, p := range plans {
				xs[i] = inputs(uint64(i), w, p.n)
			}
			bufs32 := make([][][]float32, ops)
			bufs64 := make([][][]float64, ops)
			for i, p := range plans {
				bufs32[i] = clone(xs[i])
				bufs64[i] = make([][]float64, w)
				for r := range w {
					bufs64[i][r] = make([]float64, p.n)
					for j, v := range xs[i][r] {
						bufs64[i][r][j] = float64(v)
					}
				}
			}
			errs := c.each(func(rank int, r *Ring) error {
				for i := 0; i < ops; {
					var hs []*Handle
					batch := plans[i].batch
					for j := 0; j < batch && i < ops; j++ {
						if p := plans[i]; p.f64 {
							if err := r.AllReduceFloat64(ctx, bufs64[i][rank], p.o); err != nil {
								return fmt.Errorf("op %d: %w", i, err)
							}
						} else {
							hs = append(hs, r.StartOp(ctx, i, bufs32[i][rank], p.o))
						}
						i++
					}
					for _, h := range hs {
						if err := h.Wait(); err != nil {
							return err
						}
					}
				}
				return nil
			})
			for rank, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", rank, err)
				}
			}
			for i, p := range plans {
				if p.f64 {
					for rank := range w {
						for j := range p.n {
							var want float64
							seg := 0
							for s := (schedule{n: p.n, w: w}); seg < w; seg++ {
								if off, cnt := s.segment(seg); j >= off && j < off+cnt {
									break
								}
							}
							want = float64(xs[i][seg][j])
							for k := 1; k < w; k++ {
								want = float64(xs[i][(seg+k)%w][j]) + want
							}
							if p.o == Mean {
								want *= 1 / float64(w)
							}
							if got := bufs64[i][rank][j]; math.Float64bits(got) != math.Float64bits(want) {
								t.Fatalf("op %d (float64) rank %d element %d: %v, want %v", i, rank, j, got, want)
							}
						}
					}
					continue
				}
				want := reference(xs[i], p.o)
				for rank := range w {
					sameBits(t, fmt.Sprintf("op %d rank %d", i, rank), bufs32[i][rank], want)
				}
			}
		})
	}
}

// TestBucketRunsAlone: a started bucket is reduced in the background
// without waiting for later buckets or for a Wait call, so backward can go
// on while it travels.
func TestBucketRunsAlone(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind.name, func(t *testing.T) {
			const w = 3
			c := kind.build(t, Config{Generation: 1, WorldSize: w, ChunkBytes: 64}, nil)
			ctx := testCtx(t)
			xs := inputs(9, w, 500)
			bufs := clone(xs)
			errs := c.each(func(rank int, r *Ring) error {
				h := r.Start(ctx, 0, bufs[rank])
				select {
				case <-h.Done(): // finished with nobody waiting and nothing else started
				case <-ctx.Done():
					return fmt.Errorf("bucket 0 made no progress on its own")
				}
				return h.Wait()
			})
			for rank, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", rank, err)
				}
				sameBits(t, fmt.Sprintf("rank %d", rank), bufs[rank], reference(xs, Mean))
			}
		})
	}
}
