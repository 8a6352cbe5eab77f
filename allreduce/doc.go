// Package allreduce is ringtrain's data plane: a ring all-reduce of float32
// gradients (and small float64 vectors) between the workers of one
// membership generation, over gRPC streams between ring neighbours and,
// for the tensor data, a TCP connection beside each stream.
//
// # Algorithm
//
// Reduce-scatter then all-gather around the ring (schedule.go): each rank
// sends about 2(W−1)/W of the buffer and receives as much, whatever W is.
// Segments are cut into chunks (Config.ChunkBytes, 1 MiB by default) and a
// chunk is forwarded as soon as it has been added, so sending, receiving
// and adding overlap. Every segment is summed in one fixed order along the
// ring, scaled by 1/W once (Mean), and then copied to every rank, so all
// ranks hold bit-identical results, and the same inputs give the same bits
// on every run. Any length works, including 0 and lengths below W.
//
// Every chunk travels with a header (generation, operation sequence
// number, bucket, step, offset, count, length, element type, reduction,
// sender); the receiver checks it against its own schedule before it
// touches any data, so a frame from another generation or operation fails
// the operation (ErrStaleGeneration, ErrMismatch, ErrProtocol) instead of
// being added.
//
// Data is never copied by this package on its way through: the sender
// hands the transport a view of the caller's buffer (and does not let the
// operation finish before the transport has released it), and the receiver
// adds straight from the transport's receive buffers into place, or reads
// what it only copies straight into place (Sink). The element-wise adds
// have AVX2 versions on amd64 that perform the same IEEE operations as the
// Go loops (build tag noasm selects the Go loops).
//
// With Config.Wire = WireBF16 float32 data travels as bfloat16: a hop
// decodes what it receives, adds its own float32 values in float32 and
// encodes the partial sum again; the rank that completes a segment rounds
// it before the all-gather, so every rank still holds the same bits (see
// docs/precision.md). Float64 operations are never compressed.
//
// # Usage
//
// Once per process, create the transport (with the process's transport
// credentials, TLS or plaintext) and its gRPC server: NewGRPCServer builds
// it with ServerOptions (flow control windows, buffer sizes, message limits
// and buffer pool tuned for tensors; without them the ring works at a
// fraction of the speed), the Peer and health services and the raw data
// path (raw.go: the chunks over a TCP connection of their own, recognised
// on the same port, with the same credentials' handshake):
//
//	tr := allreduce.NewGRPCTransport()
//	tr.SetCredentials(creds)
//	srv := allreduce.NewGRPCServer(tr, myOpts...)
//
// A server built otherwise (ServerOptions and Register, or a grpc.Creds
// in myOpts) carries the chunks on the gRPC streams, at about half the
// speed on loopback.
//
// For every membership generation, create a ring. New connects to both
// neighbours and returns when they are connected too (bound it with ctx).
// Generations seen by one transport only increase: a stream of an older
// generation than the newest one this process connected is rejected with
// ErrStaleGeneration.
//
//	ring, err := allreduce.New(ctx, tr, allreduce.Config{
//		Generation: gen, Rank: rank, WorldSize: w, Peers: addrs, Wire: allreduce.WireBF16})
//
// AllReduce averages a buffer in place. To overlap with the backward pass,
// Start each gradient bucket as soon as it is complete and Wait for all of
// them before the optimizer step; the buckets are reduced one after another
// on a background goroutine while the caller keeps computing. The ranks must
// start the same buckets in the same order (a difference fails the
// operation with ErrMismatch). PlanBuckets cuts a flat gradient buffer into
// buckets in backward order.
//
//	buckets := allreduce.PlanBuckets(paramSizes, allreduce.DefaultBucketBytes)
//	hs := make([]*allreduce.Handle, len(buckets))
//	for i, b := range buckets { // as backward completes each
//		hs[i] = ring.Start(ctx, b.ID, grads[b.Off:b.Off+b.Len])
//	}
//	for _, h := range hs {
//		if err := h.Wait(); err != nil { … }
//	}
//
// AllReduceFloat64 (Sum or Mean) reduces small vectors such as the loss and
// token counts through the same ring; AllReduceOp and StartOp take the
// reduction (Sum or Mean) for float32.
//
// On a generation change, Close the ring (pending operations fail with
// ErrClosed) and create a new one. Close of an idle ring is graceful: the
// right neighbour still receives everything sent, so a neighbour whose
// operation is still in flight can finish it.
//
// # Failures
//
// An operation never hangs: its context bounds it, and a peer that dies
// breaks the streams, which fails the operation on every rank (each rank
// that fails aborts its own streams, so the failure travels around the
// ring). A failed operation breaks the ring for good (ErrBroken); the
// caller recovers with a new ring for a new generation.
//
// # Transports
//
// The ring talks to its neighbours through the small Transport and Link
// interfaces. InmemNetwork implements them with channels for tests;
// GRPCTransport with one client stream per rank to its right neighbour
// (service Peer in proto/peer.proto) and the raw connection beside it, or
// tensor bytes written on the stream straight from the caller's buffer by
// a raw codec.
package allreduce
