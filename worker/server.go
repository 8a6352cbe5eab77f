package worker

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/heal"
)

// NewGRPCServer returns a worker's gRPC server: the all-reduce peer
// service of tr (with its tuned transport options), the state-transfer
// service of state and the health service; opts come first (the
// transport credentials).
func NewGRPCServer(tr *allreduce.GRPCTransport, state *heal.Server, opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append(opts, allreduce.ServerOptions()...)...)
	tr.Register(s)
	state.Register(s)
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}
