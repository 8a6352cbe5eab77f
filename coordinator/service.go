package coordinator

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/ringtrain/ringtrain/proto"
)

// NewGRPCServer returns the coordinator's gRPC server with the Coordinator
// and health services registered.
func NewGRPCServer(c *Coordinator) *grpc.Server {
	s := grpc.NewServer(
		grpc.MaxRecvMsgSize(16<<20),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, toStatus(err)
		}),
	)
	pb.RegisterCoordinatorServer(s, &service{c: c})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	return s
}

// StopGRPC stops s gracefully within d, then forcibly.
func StopGRPC(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// toStatus translates errors to gRPC status codes, in one place.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrBadName):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

type service struct {
	pb.UnimplementedCoordinatorServer
	c *Coordinator
}

var _ pb.CoordinatorServer = (*service)(nil)

func (s *service) JobStatus(ctx context.Context, _ *pb.JobStatusRequest) (*pb.JobStatusResponse, error) {
	st, _, _ := s.c.hub.get()
	return StatusProto(st, s.c.cfg.RunDir), nil
}

func (s *service) WatchJob(req *pb.WatchJobRequest, stream pb.Coordinator_WatchJobServer) error {
	minGap := time.Duration(req.GetMinIntervalMs()) * time.Millisecond
	var last uint64
	first := true
	for {
		st, ver, changed := s.c.hub.get()
		if first || ver != last {
			if err := stream.Send(StatusProto(st, s.c.cfg.RunDir)); err != nil {
				return err
			}
			first, last = false, ver
			if st.Phase == PhaseDone || st.Phase == PhaseFailed {
				return nil
			}
		}
		select {
		case <-changed:
		case <-s.c.hub.closed():
			st, _, _ := s.c.hub.get()
			return stream.Send(StatusProto(st, s.c.cfg.RunDir))
		case <-stream.Context().Done():
			return toStatus(stream.Context().Err())
		}
		if minGap > 0 {
			select {
			case <-time.After(minGap):
			case <-stream.Context().Done():
				return toStatus(stream.Context().Err())
			}
		}
	}
}

func (s *service) Report(ctx context.Context, r *pb.WorkerReport) (*pb.ReportAck, error) {
	if err := CheckName(r.GetName()); err != nil {
		return nil, err
	}
	if reportKinds[r.GetKind()] == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "report kind %v", r.GetKind())
	}
	rep, err := s.c.report(ctx, Report{
		Name: r.GetName(), Generation: r.GetGeneration(), Rank: int(r.GetRank()), Kind: reportKinds[r.GetKind()],
		Step: int(r.GetStep()), Loss: r.GetLoss(), LR: r.GetLr(), GradNorm: r.GetGradNorm(), Tokens: r.GetTokens(),
		StepTime: time.Duration(r.GetStepTimeS() * float64(time.Second)),
		HasVal:   r.GetHasValLoss(), ValLoss: r.GetValLoss(), Err: r.GetError(),
	})
	if err != nil {
		return nil, err
	}
	return &pb.ReportAck{Generation: rep.gen, Stale: rep.stale}, nil
}

var reportKinds = map[pb.WorkerReport_Kind]ReportKind{
	pb.WorkerReport_KIND_READY:           ReportReady,
	pb.WorkerReport_KIND_STEP:            ReportStep,
	pb.WorkerReport_KIND_CHECKPOINT_PART: ReportCheckpointPart,
	pb.WorkerReport_KIND_FAILED:          ReportFailed,
	pb.WorkerReport_KIND_RING_FAILED:     ReportRingFailed,
}

// StatusProto converts a status snapshot to its wire form.
func StatusProto(s Status, runDir string) *pb.JobStatusResponse {
	r := &pb.JobStatusResponse{
		Job: s.Job, Phase: string(s.Phase), Step: int64(s.Step), MaxSteps: int64(s.MaxSteps),
		Loss: s.Loss, ValLoss: s.ValLoss, Lr: s.LR, GradNorm: s.GradNorm, TokensPerS: s.TokensPerS,
		Tokens: s.Tokens, Generation: s.Generation, WorldSize: int32(s.World), EtaS: s.ETA.Seconds(),
		LastCheckpointStep: int64(s.LastCheckpoint), RunDir: runDir, Error: s.Err,
		TimeUnixMs: time.Now().UnixMilli(),
	}
	for _, w := range s.Workers {
		ws := &pb.WorkerStatus{
			Name: w.Name, Rank: int32(w.Rank), Address: w.Address, State: w.State, Step: int64(w.Step),
			StepTimeS: w.StepTime.Seconds(), TokensPerS: w.TokensPerS,
		}
		if !w.LastHeartbeat.IsZero() {
			ws.LastHeartbeatUnixMs = w.LastHeartbeat.UnixMilli()
		}
		r.Workers = append(r.Workers, ws)
	}
	return r
}
