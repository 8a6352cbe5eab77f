package worker

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringtrain/ringtrain/allreduce"
)

// NewGRPCServer returns a worker's gRPC server: the all-reduce peer
// service of tr (with its tuned transport options) and the health service.
func NewGRPCServer(tr *allreduce.GRPCTransport) *grpc.Server {
	s := grpc.NewServer(allreduce.ServerOptions()...)
	tr.Register(s)
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}
