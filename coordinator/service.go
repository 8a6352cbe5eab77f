package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/cluster"
	pb "github.com/ringtrain/ringtrain/proto"
)

// NewGRPCServer returns the coordinator's gRPC server with the Coordinator
// and health services registered; opts come first (the transport
// credentials). With checkPeer, a report is accepted only from the address
// its worker registered (for clusters without TLS, where anyone could
// connect).
func NewGRPCServer(c *Coordinator, checkPeer bool, opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(16<<20),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, toStatus(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return toStatus(h(srv, ss))
		}),
	)...)
	pb.RegisterCoordinatorServer(s, &service{c: c, checkPeer: checkPeer})
	healthpb.RegisterHealthServer(s, health.NewServer())
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

// Errors of the service.
var (
	errRefused    = errors.New("report refused")
	errNotWanted  = errors.New("checkpoint not wanted")
	errNoSuchStep = errors.New("no such checkpoint")
)

// toStatus translates errors to gRPC status codes, in one place.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, cluster.ErrBadName):
		code = codes.InvalidArgument
	case errors.Is(err, errRefused):
		code = codes.PermissionDenied
	case errors.Is(err, errNotLeader):
		code = codes.Unavailable
	case errors.Is(err, errNotWanted):
		code = codes.Aborted
	case errors.Is(err, errNoSuchStep), errors.Is(err, checkpoint.ErrNoCheckpoint), errors.Is(err, os.ErrNotExist):
		code = codes.NotFound
	}
	return status.Error(code, err.Error())
}

type service struct {
	pb.UnimplementedCoordinatorServer
	c         *Coordinator
	checkPeer bool
	hosts     sync.Map // host → []string of its addresses
}

var _ pb.CoordinatorServer = (*service)(nil)

func (s *service) JobStatus(ctx context.Context, _ *pb.JobStatusRequest) (*pb.JobStatusResponse, error) {
	st, _, _ := s.c.hub.get()
	return s.c.statusProto(st), nil
}

func (s *service) WatchJob(req *pb.WatchJobRequest, stream pb.Coordinator_WatchJobServer) error {
	minGap := time.Duration(req.GetMinIntervalMs()) * time.Millisecond
	var last uint64
	first := true
	for {
		st, ver, changed := s.c.hub.get()
		if first || ver != last {
			if err := stream.Send(s.c.statusProto(st)); err != nil {
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
			return stream.Send(s.c.statusProto(st))
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		if minGap > 0 {
			select {
			case <-time.After(minGap):
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
	}
}

// fromMember checks, without TLS, that a call comes from the address the
// named worker registered.
func (s *service) fromMember(ctx context.Context, name string) error {
	if !s.checkPeer {
		return nil
	}
	if !s.c.isLeader() {
		return errNotLeader // ask again later, rather than refuse what this coordinator does not know yet
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return fmt.Errorf("%w: no peer address", errRefused)
	}
	from, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return fmt.Errorf("%w: peer address %s", errRefused, p.Addr)
	}
	st, _, _ := s.c.hub.get()
	for _, w := range st.Workers {
		if w.Name != name { // any incarnation: the machine judges that
			continue
		}
		host, _, err := net.SplitHostPort(w.Address)
		if err != nil {
			break
		}
		if slices.Contains(s.addressesOf(ctx, host), from) {
			return nil
		}
		return fmt.Errorf("%w: worker %s is registered at %s, the call comes from %s", errRefused, name, w.Address, from)
	}
	return fmt.Errorf("%w: worker %s is not registered", errRefused, name)
}

func (s *service) addressesOf(ctx context.Context, host string) []string {
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}
	}
	if v, ok := s.hosts.Load(host); ok {
		return v.([]string)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(lctx, host)
	if err != nil {
		return nil
	}
	s.hosts.Store(host, addrs)
	return addrs
}

func (s *service) Report(ctx context.Context, r *pb.WorkerReport) (*pb.ReportAck, error) {
	acks, err := s.reports(ctx, []*pb.WorkerReport{r})
	if err != nil {
		return nil, err
	}
	return acks[0], nil
}

func (s *service) ReportBatch(ctx context.Context, rs *pb.WorkerReports) (*pb.ReportAcks, error) {
	if len(rs.GetReports()) > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "%d reports in one batch, at most %d", len(rs.GetReports()), maxBatch)
	}
	acks, err := s.reports(ctx, rs.GetReports())
	if err != nil {
		return nil, err
	}
	return &pb.ReportAcks{Acks: acks}, nil
}

// maxBatch bounds the reports of one ReportBatch.
const maxBatch = 1000

// reports hands reports to the machine in one go.
func (s *service) reports(ctx context.Context, rs []*pb.WorkerReport) ([]*pb.ReportAck, error) {
	acks := make([]*pb.ReportAck, len(rs))
	var reps []Report
	var idx []int
	for i, r := range rs {
		rep, err := s.convert(ctx, r)
		if err != nil {
			if status.Code(err) == codes.InvalidArgument || errors.Is(err, cluster.ErrBadName) || errors.Is(err, errNotLeader) {
				return nil, err
			}
			acks[i] = &pb.ReportAck{Refused: err.Error()}
			continue
		}
		reps = append(reps, rep)
		idx = append(idx, i)
	}
	err := s.c.do(ctx, func(now time.Time, m *Machine) []Action {
		var acts []Action
		for k, rep := range reps {
			ack, a := m.Report(now, rep)
			acts = append(acts, a...)
			acks[idx[k]] = &pb.ReportAck{Generation: ack.Generation, Stale: ack.Stale, Refused: ack.Refused}
			if ack.Refused != "" {
				s.c.log.Debug("report refused", "worker", rep.Name, "kind", rep.Kind, "step", rep.Step, "why", ack.Refused)
			}
		}
		return acts
	})
	if err != nil {
		return nil, err
	}
	return acks, nil
}

// convert checks a report and turns it into the machine's form.
func (s *service) convert(ctx context.Context, r *pb.WorkerReport) (Report, error) {
	if err := cluster.CheckName(r.GetName()); err != nil {
		return Report{}, err
	}
	kind := reportKinds[r.GetKind()]
	if kind == 0 {
		return Report{}, status.Errorf(codes.InvalidArgument, "report kind %v", r.GetKind())
	}
	if err := s.fromMember(ctx, r.GetName()); err != nil {
		return Report{}, err
	}
	return Report{
		Name: r.GetName(), Incarnation: r.GetIncarnation(), Generation: r.GetGeneration(), Rank: int(r.GetRank()), Kind: kind,
		Step: int(r.GetStep()), Lineage: r.GetLineage(), Loss: r.GetLoss(), LR: r.GetLr(), GradNorm: r.GetGradNorm(),
		Tokens: r.GetTokens(), World: int(r.GetWorldSize()), StepTime: seconds(r.GetStepTimeS()), Compute: seconds(r.GetComputeS()),
		ReduceWait: seconds(r.GetAllreduceWaitS()), Optimizer: seconds(r.GetOptimizerS()),
		HasVal: r.GetHasValLoss(), ValLoss: r.GetValLoss(), Err: r.GetError(), Phase: r.GetPhase(),
		HealSeconds: r.GetHealSeconds(), HealSource: int(r.GetHealSource()), HealBytes: int64(r.GetHealBytes()),
		Loaded: r.GetLoadedCheckpoint(),
	}, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

var reportKinds = map[pb.WorkerReport_Kind]ReportKind{
	pb.WorkerReport_KIND_READY:       ReportReady,
	pb.WorkerReport_KIND_STEP:        ReportStep,
	pb.WorkerReport_KIND_FAILED:      ReportFailed,
	pb.WorkerReport_KIND_RING_FAILED: ReportRingFailed,
	pb.WorkerReport_KIND_STANDBY:     ReportStandby,
	pb.WorkerReport_KIND_LEAVING:     ReportLeaving,
	pb.WorkerReport_KIND_HEARTBEAT:   ReportHeartbeat,
	pb.WorkerReport_KIND_DRAINED:     ReportDrained,
}

func (s *service) PutCheckpoint(stream grpc.ClientStreamingServer[pb.CheckpointChunk, pb.CheckpointAck]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	step, lineage := int(first.GetStep()), first.GetLineage()
	if err := s.fromMember(ctx, first.GetWorker()); err != nil {
		return err
	}
	var want bool
	if err := s.c.do(ctx, func(now time.Time, m *Machine) []Action {
		v := m.views[first.GetWorker()]
		if v == nil || v.Incarnation != first.GetIncarnation() || !m.WantCheckpoint(step) {
			return nil
		}
		want = true
		return m.Uploading(now, step, true, nil)
	}); err != nil {
		return err
	}
	if !want {
		return fmt.Errorf("%w: step %d (newest committed: %d)", errNotWanted, step, s.c.Status().LastCheckpoint)
	}
	s.c.counters.uploadBegan(step, time.Now())
	dir := checkpoint.Dir(s.c.cfg.RunDir, int64(step))
	names, err := s.receive(stream, first, dir)
	if err != nil {
		s.c.counters.checkpointEnded(step, false, time.Now())
		_ = s.c.do(context.Background(), func(now time.Time, m *Machine) []Action { return m.Uploading(now, step, false, err) })
		return err
	}
	s.c.log.Debug("checkpoint received", "step", step, "files", names, "from", first.GetWorker())
	if err := s.c.do(ctx, func(now time.Time, m *Machine) []Action { return m.Uploaded(now, step, lineage) }); err != nil {
		return err
	}
	return stream.SendAndClose(&pb.CheckpointAck{Step: int64(step)})
}

// receive writes the uploaded files into a fresh dir.
func (s *service) receive(stream grpc.ClientStreamingServer[pb.CheckpointChunk, pb.CheckpointAck], first *pb.CheckpointChunk, dir string) ([]string, error) {
	if err := os.RemoveAll(dir); err != nil { // leftovers of an upload that failed
		return nil, err
	}
	cr := chunkReader{recv: stream.Recv, next: first}
	names, err := cr.receive(dir)
	if err != nil {
		return names, err
	}
	if !slices.Contains(names, checkpoint.StateFile) {
		return names, fmt.Errorf("upload of %s has no %s", dir, checkpoint.StateFile)
	}
	return names, nil
}

func (s *service) GetCheckpoint(req *pb.GetCheckpointRequest, stream grpc.ServerStreamingServer[pb.CheckpointChunk]) error {
	var dir string
	if req.GetStep() < 0 {
		d, _, err := checkpoint.Latest(s.c.cfg.RunDir)
		if err != nil {
			return err
		}
		dir = d
	} else {
		dir = checkpoint.Dir(s.c.cfg.RunDir, req.GetStep())
		if err := checkpoint.Verify(dir); err != nil {
			return fmt.Errorf("%w: %v", errNoSuchStep, err)
		}
	}
	s.c.log.Info("sending checkpoint", "dir", dir, "to", req.GetWorker())
	return sendCheckpoint(dir, stream.Send)
}

// statusProto converts a status snapshot to its wire form.
func (c *Coordinator) statusProto(s Status) *pb.JobStatusResponse {
	r := &pb.JobStatusResponse{
		Job: s.Job, Phase: string(s.Phase), Step: int64(s.Step), MaxSteps: int64(s.MaxSteps),
		Loss: s.Loss, ValLoss: s.ValLoss, HasValLoss: s.HasVal, ValStep: int64(s.ValStep), Lr: s.LR, GradNorm: s.GradNorm, TokensPerS: s.TokensPerS,
		Tokens: s.Tokens, Generation: s.Generation, WorldSize: int32(s.World), EtaS: s.ETA.Seconds(),
		LastCheckpointStep: int64(s.LastCheckpoint), RunDir: c.cfg.RunDir, Error: s.Err,
		TimeUnixMs: time.Now().UnixMilli(), Run: c.run.ID, Coordinator: c.cfg.Advertise,
	}
	for _, w := range s.Workers {
		ws := &pb.WorkerStatus{
			Name: w.Name, Rank: int32(w.Rank), Address: w.Address, State: w.State, Step: int64(w.Step),
			StepTimeS: w.StepTime.Seconds(), TokensPerS: w.TokensPerS, Incarnation: w.Incarnation,
			ComputeS: w.Compute.Seconds(), AllreduceWaitS: w.ReduceWait.Seconds(), OptimizerS: w.Optimizer.Seconds(),
			Detail: w.Detail,
		}
		if !w.LastReport.IsZero() {
			ws.LastHeartbeatUnixMs = w.LastReport.UnixMilli()
		}
		r.Workers = append(r.Workers, ws)
	}
	for _, e := range s.Events {
		r.Events = append(r.Events, &pb.JobEvent{TimeUnixMs: e.Time.UnixMilli(), Kind: e.Kind, Step: int64(e.Step),
			Generation: e.Generation, Worker: e.Worker, Seconds: e.Seconds, Detail: e.Detail})
	}
	return r
}

// StatusProto is the wire form of c's newest status.
func (c *Coordinator) StatusProto() *pb.JobStatusResponse { return c.statusProto(c.Status()) }
