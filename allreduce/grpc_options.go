package allreduce

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Tuning of the peer streams (see GRPC.md in the project notes): both flow
// control windows large, 1 MiB socket buffers, and message limits well
// above the chunk size. The window holds 8 default chunks: far more than
// the bandwidth-delay product of loopback or a LAN at ~1 GB/s, while the
// data grpc buffers ahead of the reader stays small enough to be found in
// cache (4 and 16 MiB measured alike here, within noise).
const (
	windowSize     = 8 << 20
	ioBufferSize   = 1 << 20
	maxMessageSize = 256 << 20
)

// ServerOptions are the options the gRPC server that hosts the peer service
// must be built with. They apply to the whole server.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.ReadBufferSize(ioBufferSize),
		grpc.WriteBufferSize(ioBufferSize),
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		experimental.BufferPool(peerBufferPool),
	}
}

// NewGRPCServer returns the gRPC server of a ring member: built with
// ServerOptions, tr's credentials (SetCredentials; plaintext by default)
// and then extra, serving tr's Peer service, the gRPC health service, and
// the raw data path of tr's rings (chunks over a TCP connection of their
// own to the same port, see raw.go). A grpc.Creds in extra replaces tr's
// credentials, and the rings of such a server carry their chunks on their
// gRPC streams. Build one server per transport.
func NewGRPCServer(tr *GRPCTransport, extra ...grpc.ServerOption) *grpc.Server {
	opts := append(ServerOptions(), grpc.Creds(rawCreds{TransportCredentials: tr.creds, t: tr}))
	s := grpc.NewServer(append(opts, extra...)...)
	tr.Register(s)
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}

// DialOptions are the options GRPCTransport dials neighbours with.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
		grpc.WithReadBufferSize(ioBufferSize),
		grpc.WithWriteBufferSize(ioBufferSize),
		// A retried stream would keep sent tensors alive, and a ring
		// stream cannot be replayed anyway.
		grpc.WithDisableRetry(),
		experimental.WithBufferPool(peerBufferPool),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageSize),
			grpc.MaxCallSendMsgSize(maxMessageSize),
		),
	}
}
