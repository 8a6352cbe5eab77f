package worker

import (
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
)

// NewGRPCServer returns a worker's gRPC server: the all-reduce peer
// service of tr (with its tuned transport options and raw data path) and
// the health service, as allreduce.NewGRPCServer builds it.
func NewGRPCServer(tr *allreduce.GRPCTransport) *grpc.Server {
	return allreduce.NewGRPCServer(tr)
}
