package heal

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func serve(t *testing.T) (*Server, *grpc.ClientConn) {
	t.Helper()
	s := NewServer(slog.Default())
	srv := grpc.NewServer()
	s.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return s, cc
}

func tensors(seed uint64, sizes ...int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out [][]float32
	for _, n := range sizes {
		b := make([]float32, n)
		for i := range b {
			b[i] = rng.Float32()
		}
		out = append(out, b)
	}
	return out
}

// A state crosses a real gRPC connection bit for bit, chunk boundaries
// and empty tensors included; a fetch for another generation, or into
// tensors of another model, is refused.
func TestFetch(t *testing.T) {
	s, cc := serve(t)
	sizes := []int{3*ChunkBytes/4 + 5, 0, 17, ChunkBytes / 4}
	src := tensors(1, sizes...)
	s.Offer(4, Header{Step: 12, Lineage: 3, Hash: 99, Run: "r"}, src)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dst := tensors(2, sizes...)
	h, err := Fetch(ctx, cc, 4, "t", 1, dst)
	if err != nil {
		t.Fatal(err)
	}
	if h != (Header{Step: 12, Lineage: 3, Hash: 99, Run: "r"}) {
		t.Errorf("header %+v", h)
	}
	for i := range src {
		if !slices.Equal(src[i], dst[i]) {
			t.Fatalf("tensor %d differs after the transfer", i)
		}
	}
	if _, err := Fetch(ctx, cc, 5, "t", 1, dst); !errors.Is(err, ErrNotOffered) {
		t.Errorf("other generation: %v, want ErrNotOffered", err)
	}
	if _, err := Fetch(ctx, cc, 4, "t", 1, tensors(3, 1, 2)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("other shapes: %v, want ErrCorrupt", err)
	}
	s.Withdraw()
	if _, err := Fetch(ctx, cc, 4, "t", 1, dst); !errors.Is(err, ErrNotOffered) {
		t.Errorf("after Withdraw: %v, want ErrNotOffered", err)
	}
}

// A chunk whose bytes do not match its CRC is refused.
func TestChunkCRC(t *testing.T) {
	dst := tensors(1, 4)
	in := &chunkIn{dst: dst}
	out := &chunkOut{tensor: 0, offset: 0, crc: 12345, data: make([]byte, 16)}
	bs, err := codec{}.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := (codec{}).Unmarshal(bs, in); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad CRC: %v, want ErrCorrupt", err)
	}
}
