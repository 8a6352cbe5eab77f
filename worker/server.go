package worker

import (
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/heal"
)

// NewGRPCServer returns a worker's gRPC server: the one
// allreduce.NewGRPCServer builds for tr (the all-reduce peer service with
// its tuned transport options, raw data path and tr's credentials, and the
// health service) with the state-transfer service of state. opts come
// after; a grpc.Creds among them replaces tr's credentials (and the rings
// then send their chunks on their gRPC streams).
func NewGRPCServer(tr *allreduce.GRPCTransport, state *heal.Server, opts ...grpc.ServerOption) *grpc.Server {
	s := allreduce.NewGRPCServer(tr, opts...)
	state.Register(s)
	return s
}
