package trainer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

// File names of the model state inside a checkpoint directory (see
// docs/checkpoints.md); package checkpoint knows only the directory
// protocol around them.
const (
	ModelFile      = "model.safetensors"
	ModelIndexFile = "model.safetensors.index.json"
	OptimizerFile  = "optimizer.safetensors"
	StateFile      = checkpoint.StateFile
)

// State is state.json: what a resumed run needs besides the tensors.
type State struct {
	// Step (steps completed: the checkpoint holds the weights after step
	// Step−1, and a resumed run continues with step Step) and Generation
	// (the lineage: who computed the newest step; see Trainer.Lineage).
	checkpoint.Meta
	// DataPosition is the number of training sequences consumed so far.
	DataPosition int64        `json:"data_position"`
	Seed         int64        `json:"seed"`
	WorldSize    int          `json:"world_size"`
	Model        model.Config `json:"model"`
	Loss         float64      `json:"loss"`
	// Job is the job the state was trained with (its JSON).
	Job json.RawMessage `json:"job,omitempty"`
	// Run identifies the run (the coordinator's run id).
	Run  string    `json:"run,omitempty"`
	Time time.Time `json:"time"`
}

// FileWriter makes the file name of a checkpoint durable with the bytes
// write produces: checkpoint.WriteFile into a local directory, or an upload
// to the coordinator.
type FileWriter func(name string, write func(io.Writer) error) error

// DirWriter is the FileWriter of a local checkpoint directory.
func DirWriter(dir string) FileWriter {
	return func(name string, write func(io.Writer) error) error { return checkpoint.WriteFile(dir, name, write) }
}

// SaveCheckpoint writes this trainer's whole state (weights, moments,
// state.json with loss, world size and the job's JSON) through w, without
// the commit marker.
func (t *Trainer) SaveCheckpoint(w FileWriter, st State) error {
	if err := w(ModelFile, func(out io.Writer) error { return model.WriteModel(out, t.cfg, t.Model.Params) }); err != nil {
		return err
	}
	if err := WriteOptimizer(w, OptimizerFile, t.Opt.Layout(), t.Opt.M, t.Opt.V); err != nil {
		return err
	}
	st.Step, st.Generation, st.DataPosition = t.completed, t.lineage, t.DataPosition()
	st.Seed, st.Model = int64(t.job.Train.Seed), t.cfg
	if st.WorldSize == 0 {
		st.WorldSize = t.world
	}
	return WriteState(w, st)
}

// Restore loads a committed checkpoint directory: weights, AdamW moments,
// the step (hence the data position) and the lineage to continue from.
func (t *Trainer) Restore(dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if st.Model != t.cfg {
		return fmt.Errorf("checkpoint %s: model %+v differs from the job's %+v", dir, st.Model, t.cfg)
	}
	if want := shard.StepPosition(st.Step, t.job.Train.GlobalBatch); st.DataPosition != want {
		return fmt.Errorf("checkpoint %s: data_position %d is not step %d × global_batch %d; the global batch changed",
			dir, st.DataPosition, st.Step, t.job.Train.GlobalBatch)
	}
	if err := LoadInto(filepath.Join(dir, ModelFile), t.cfg, t.Model.Params); err != nil {
		return err
	}
	if err := ReadOptimizer(dir, t.Opt.Layout(), t.Opt.M, t.Opt.V); err != nil {
		return err
	}
	t.completed, t.lineage = st.Step, st.Generation
	return nil
}

// StateBuffers are the tensors of the training state, in a fixed order:
// weights, AdamW first and second moments. With Completed and Lineage they
// are the whole state (the data position and seeds follow from the step
// and the job), so copying them from another rank heals this one.
func (t *Trainer) StateBuffers() [][]float32 {
	return [][]float32{t.Model.Params, t.Opt.M, t.Opt.V}
}

// SetState records that StateBuffers now hold the state after completed
// steps of the given lineage (a state transfer filled them).
func (t *Trainer) SetState(completed, lineage int64) {
	t.completed, t.lineage = completed, lineage
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// StateHash is a CRC-32C of the state buffers and the step: ranks holding
// the same state have the same hash.
func (t *Trainer) StateHash() uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(t.completed))
	h := crc32.Update(0, castagnoli, b[:])
	for _, buf := range t.StateBuffers() {
		h = crc32.Update(h, castagnoli, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), 4*len(buf)))
	}
	return h
}

// WriteOptimizer writes the AdamW moments m and v (laid out as layout) as
// the file name with tensors exp_avg.<param> and exp_avg_sq.<param>.
// Several writers may each write a file named optimizer*.safetensors
// holding a disjoint subset of the layout (pass the subset as layout).
func WriteOptimizer(w FileWriter, name string, layout []model.ParamSpec, m, v []float32) error {
	if !strings.HasPrefix(name, "optimizer") || !strings.HasSuffix(name, ".safetensors") {
		return fmt.Errorf("optimizer file name %q must match optimizer*.safetensors", name)
	}
	ts := append(model.LayoutTensors(layout, m, "exp_avg."), model.LayoutTensors(layout, v, "exp_avg_sq.")...)
	return w(name, func(out io.Writer) error { return model.WriteSafetensors(out, ts, nil) })
}

// ReadOptimizer fills m and v (laid out as layout) from every
// optimizer*.safetensors in dir; each tensor must appear exactly once.
func ReadOptimizer(dir string, layout []model.ParamSpec, m, v []float32) error {
	files, err := filepath.Glob(filepath.Join(dir, "optimizer*.safetensors"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("%s: no optimizer*.safetensors", dir)
	}
	all := map[string]model.Tensor{}
	for _, f := range files {
		ts, _, err := model.ReadSafetensors(f)
		if err != nil {
			return err
		}
		for name, t := range ts {
			if _, dup := all[name]; dup {
				return fmt.Errorf("%s: tensor %s appears in more than one optimizer file", dir, name)
			}
			all[name] = t
		}
	}
	if err := model.FillLayout(layout, m, all, "exp_avg."); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := model.FillLayout(layout, v, all, "exp_avg_sq."); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// WriteState writes state.json through w (Time is set to now if zero).
func WriteState(w FileWriter, st State) error {
	if st.Time.IsZero() {
		st.Time = time.Now().UTC()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return w(StateFile, func(out io.Writer) error {
		_, err := out.Write(append(b, '\n'))
		return err
	})
}

// ReadState reads dir/state.json.
func ReadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}
