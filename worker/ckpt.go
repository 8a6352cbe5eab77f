package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/job"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/trainer"
)

// The run directory is the coordinator's: checkpoints go there over gRPC
// and come back from there on a cold start.

var (
	errNotWanted     = errors.New("the coordinator does not want this checkpoint")
	errRefused       = errors.New("report refused")
	errNoCoordinator = errors.New("no coordinator")
)

const uploadChunk = 1 << 20

// coordinatorReadTimeout bounds coordinatorConn's read of the record: an
// etcd outage must not hold up training.
const coordinatorReadTimeout = time.Second

// coordinatorConn dials the current leader. With wait it waits until ctx
// ends for one to be known (a worker can be asked to load a checkpoint
// before the coordinator's record reached it, or while a standby takes
// over); without, it reads the record from etcd once (the watch can
// deliver it a few hundred milliseconds after the generation it published,
// by which time a fast job has taken its first checkpoint) and no leader
// is then an error (an upload does not hold up training while the
// coordinator is away).
func (w *Worker) coordinatorConn(ctx context.Context, wait bool) (*grpc.ClientConn, error) {
	for {
		rec, _, changed := w.coord.Get()
		if rec == nil && !wait && w.cfg.Etcd != nil {
			rctx, cancel := context.WithTimeout(ctx, coordinatorReadTimeout)
			rec, _ = cluster.ReadJSON[cluster.CoordinatorRecord](rctx, w.cfg.Etcd, w.k.Coordinator())
			cancel()
		}
		if rec != nil {
			return grpc.NewClient(rec.Address, w.cfg.CoordinatorDial...)
		}
		if !wait {
			return nil, errNoCoordinator
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", errNoCoordinator, context.Cause(ctx))
		}
	}
}

// coordinatorAway reports an error of talking to the coordinator that a
// later attempt may not see: none known, or one that does not answer (it
// is being restarted or replaced).
func coordinatorAway(err error) bool {
	return errors.Is(err, errNoCoordinator) || status.Code(err) == codes.Unavailable
}

// uploadCheckpoint streams tr's state (model, optimizer, state.json) to
// the coordinator, which writes and commits the checkpoint. It returns the
// bytes sent.
func (w *Worker) uploadCheckpoint(ctx context.Context, gen int64, tr Trainer) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	cc, err := w.coordinatorConn(ctx, false)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	stream, err := pb.NewCoordinatorClient(cc).PutCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	first := true
	var sent uint64
	send := func(c *pb.CheckpointChunk) error {
		if first {
			c.Step, c.Lineage, c.Worker, c.Incarnation, c.Generation = tr.Completed(), tr.Lineage(), w.cfg.Name, w.incarnation(), gen
			first = false
		}
		sent += uint64(len(c.Data))
		return stream.Send(c)
	}
	files := func(name string, write func(io.Writer) error) error {
		cw := &chunkWriter{name: name, send: send, h: sha256.New(), buf: make([]byte, 0, uploadChunk)}
		if err := write(cw); err != nil {
			return err
		}
		return cw.close()
	}
	jb, err := jobJSON(w.job())
	if err != nil {
		return 0, err
	}
	if err := tr.SaveCheckpoint(files, trainer.State{Job: jb, Run: w.runID()}); err != nil {
		return sent, uploadErr(err, stream)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return sent, uploadErr(err, nil)
	}
	return sent, nil
}

func uploadErr(err error, stream grpc.ClientStream) error {
	if stream != nil {
		// Send failed: the server's answer says why.
		if rerr := stream.RecvMsg(new(pb.CheckpointAck)); rerr != nil {
			err = rerr
		}
	}
	if status.Code(err) == codes.Aborted {
		return fmt.Errorf("%w: %v", errNotWanted, status.Convert(err).Message())
	}
	return err
}

// chunkWriter cuts one file into CheckpointChunks.
type chunkWriter struct {
	name string
	send func(*pb.CheckpointChunk) error
	h    hash.Hash
	buf  []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), cap(c.buf)-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush(eof bool) error {
	c.h.Write(c.buf)
	ch := &pb.CheckpointChunk{Name: c.name, Data: c.buf, Eof: eof}
	if eof {
		ch.Sha256 = hex.EncodeToString(c.h.Sum(nil))
	}
	err := c.send(ch)
	c.buf = make([]byte, 0, uploadChunk) // the sent slice may still be in flight
	return err
}

func (c *chunkWriter) close() error { return c.flush(true) }

// loadCheckpoint fetches the coordinator's checkpoint of version v into a
// temporary directory, verifies it and restores tr from it. It returns
// the bytes received.
func (w *Worker) loadCheckpoint(ctx context.Context, tr Trainer, v cluster.Version) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	cc, err := w.coordinatorConn(ctx, true)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	stream, err := pb.NewCoordinatorClient(cc).GetCheckpoint(ctx, &pb.GetCheckpointRequest{Step: v.Step, Worker: w.cfg.Name})
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "ringtrain-checkpoint-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	var n uint64
	var cur *os.File
	var h hash.Hash
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		if cur == nil {
			if !checkpoint.ValidName(c.GetName()) && c.GetName() != checkpoint.CommitFile {
				return n, fmt.Errorf("checkpoint file name %q", c.GetName())
			}
			if cur, err = os.Create(dir + "/" + c.GetName()); err != nil {
				return n, err
			}
			h = sha256.New()
		}
		cur.Write(c.GetData())
		h.Write(c.GetData())
		n += uint64(len(c.GetData()))
		if c.GetEof() {
			cerr := cur.Close()
			cur = nil
			if cerr != nil {
				return n, cerr
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != c.GetSha256() {
				return n, fmt.Errorf("checkpoint file %s: sha256 %s, the coordinator's %s", c.GetName(), got, c.GetSha256())
			}
		}
	}
	if cur != nil {
		cur.Close()
		return n, fmt.Errorf("checkpoint stream ended inside a file")
	}
	if err := checkpoint.Verify(dir); err != nil {
		return n, err
	}
	if err := tr.Restore(dir); err != nil {
		return n, err
	}
	if got := (cluster.Version{Step: tr.Completed(), Generation: tr.Lineage()}); got != v {
		return n, fmt.Errorf("the coordinator's checkpoint holds %v, the generation names %v", got, v)
	}
	return n, nil
}

func jobJSON(j *job.Job) ([]byte, error) { return json.Marshal(j) }
