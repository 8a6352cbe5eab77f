package coordinator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/cluster"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/runmetrics"
)

// The run directory lives with the coordinator: it alone writes
// checkpoints (uploaded by a worker) and metrics.jsonl, and serves the
// newest checkpoint to workers that must load it.

// RunFile is the run's identity in the run directory.
const RunFile = "run.json"

// RunInfo is RUN/run.json.
type RunInfo struct {
	ID      string    `json:"id"`
	Job     string    `json:"job"`
	Created time.Time `json:"created"`
}

// loadRun reads RUN/run.json, or creates it with a fresh id.
func loadRun(runDir, job string) (RunInfo, error) {
	p := filepath.Join(runDir, RunFile)
	b, err := os.ReadFile(p)
	if err == nil {
		var ri RunInfo
		if err := json.Unmarshal(b, &ri); err != nil || ri.ID == "" {
			return RunInfo{}, fmt.Errorf("%s: not a run file (%v)", p, err)
		}
		return ri, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return RunInfo{}, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	ri := RunInfo{ID: hex.EncodeToString(rnd[:]), Job: job, Created: time.Now().UTC()}
	return ri, saveRun(runDir, ri)
}

func saveRun(runDir string, ri RunInfo) error {
	b, _ := json.MarshalIndent(ri, "", "  ")
	return checkpoint.WriteFile(runDir, RunFile, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// latestCheckpoint returns the version of the newest committed checkpoint,
// or nil.
func latestCheckpoint(runDir string) (*cluster.Version, error) {
	dir, step, err := checkpoint.Latest(runDir)
	if errors.Is(err, checkpoint.ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	meta, err := checkpoint.ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	if meta.Step != step {
		return nil, fmt.Errorf("%s: state.json says step %d", dir, meta.Step)
	}
	return &cluster.Version{Step: step, Generation: meta.Generation}, nil
}

// writtenSteps returns the steps RUN/metrics.jsonl holds and the loss of
// the newest.
func writtenSteps(runDir string) ([]int, float64, error) {
	l, err := runmetrics.ReadFile(filepath.Join(runDir, MetricsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	steps := make([]int, len(l.Steps))
	for i, s := range l.Steps {
		steps[i] = s.Step
	}
	var loss float64
	if len(l.Steps) > 0 {
		loss = l.Steps[len(l.Steps)-1].Loss
	}
	return steps, loss, nil
}

// chunkReader reads the files of one checkpoint upload from a stream of
// chunks: a file's pieces, then its eof chunk with its sha256.
type chunkReader struct {
	recv func() (*pb.CheckpointChunk, error)
	next *pb.CheckpointChunk // first chunk of the next file, read ahead
}

// receive writes every file of the upload into dir atomically and returns
// their names; a file whose hash does not match fails the upload.
func (cr *chunkReader) receive(dir string) ([]string, error) {
	var names []string
	for {
		c := cr.next
		cr.next = nil
		if c == nil {
			var err error
			if c, err = cr.recv(); errors.Is(err, io.EOF) {
				return names, nil
			} else if err != nil {
				return names, err
			}
		}
		name := c.GetName()
		if !checkpoint.ValidName(name) {
			return names, fmt.Errorf("upload: bad file name %q", name)
		}
		for _, n := range names {
			if n == name {
				return names, fmt.Errorf("upload: file %s sent twice", name)
			}
		}
		err := checkpoint.WriteFile(dir, name, func(w io.Writer) error {
			h := sha256.New()
			out := io.MultiWriter(w, h)
			for {
				if _, err := out.Write(c.GetData()); err != nil {
					return err
				}
				if c.GetEof() {
					return checkSum(name, h, c.GetSha256())
				}
				var err error
				if c, err = cr.recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return fmt.Errorf("upload: %s ends without its eof chunk", name)
					}
					return err
				}
				if c.GetName() != name {
					return fmt.Errorf("upload: %s ends without its eof chunk (next: %s)", name, c.GetName())
				}
			}
		})
		if err != nil {
			return names, err
		}
		names = append(names, name)
	}
}

func checkSum(name string, h hash.Hash, want string) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("upload: %s has sha256 %s, the sender says %s", name, got, want)
	}
	return nil
}

// sendCheckpoint streams the files of the committed checkpoint dir (COMMIT
// last) through send, in chunks of chunkBytes.
func sendCheckpoint(dir string, send func(*pb.CheckpointChunk) error) error {
	files, err := checkpoint.Files(dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files)+1)
	for _, f := range files {
		names = append(names, f.Name)
	}
	names = append(names, checkpoint.CommitFile)
	buf := make([]byte, chunkBytes)
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		h := sha256.New()
		for {
			n, rerr := io.ReadFull(f, buf)
			h.Write(buf[:n])
			c := &pb.CheckpointChunk{Name: name, Data: buf[:n]}
			last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
			if rerr != nil && !last {
				f.Close()
				return rerr
			}
			if last {
				c.Eof, c.Sha256 = true, hex.EncodeToString(h.Sum(nil))
			}
			if err := send(c); err != nil {
				f.Close()
				return err
			}
			if last {
				break
			}
		}
		f.Close()
	}
	return nil
}

// chunkBytes is the data size of one CheckpointChunk.
const chunkBytes = 1 << 20
