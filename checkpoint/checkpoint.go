package checkpoint

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringtrain/ringtrain/hf"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
)

// File names inside a checkpoint directory.
const (
	ModelFile      = "model.safetensors"
	ModelIndexFile = "model.safetensors.index.json"
	OptimizerFile  = "optimizer.safetensors"
	StateFile      = "state.json"
	CommitFile     = "COMMIT"

	tmpPrefix = ".tmp-"
)

var (
	// ErrNoCheckpoint: the run directory holds no committed, intact checkpoint.
	ErrNoCheckpoint = errors.New("no committed checkpoint")
	// ErrNotCommitted: the checkpoint directory has no COMMIT marker.
	ErrNotCommitted = errors.New("checkpoint not committed")
	// ErrChecksum: a file is missing or does not match its checksum in COMMIT.
	ErrChecksum = errors.New("checkpoint checksum mismatch")
)

// State is state.json: what a resumed run needs besides the tensors.
type State struct {
	// Step is the number of optimizer steps completed: the checkpoint holds
	// the weights after step Step−1, and a resumed run continues with step Step.
	Step int64 `json:"step"`
	// DataPosition is the number of training sequences consumed so far.
	DataPosition int64        `json:"data_position"`
	Seed         int64        `json:"seed"`
	WorldSize    int          `json:"world_size"`
	Model        model.Config `json:"model"`
	Loss         float64      `json:"loss"`
	// Job is the job file as given (YAML or JSON text).
	Job  string    `json:"job"`
	Time time.Time `json:"time"`
	// Extra holds anything else a writer wants to keep.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Dir is RUN/checkpoints/step_NNNNNNNN for the given step.
func Dir(runDir string, step int64) string {
	return filepath.Join(runDir, "checkpoints", fmt.Sprintf("step_%08d", step))
}

// WriteFile writes dir/name atomically and durably: it creates dir if
// needed, writes a temporary file in dir, fsyncs it, renames it to name and
// fsyncs dir.
func WriteFile(dir, name string, write func(w io.Writer) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, tmpPrefix+name+"-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// WriteModel writes dir/model.safetensors.
func WriteModel(dir string, cfg model.Config, params []float32) error {
	return WriteFile(dir, ModelFile, func(w io.Writer) error { return model.WriteModel(w, cfg, params) })
}

// WriteOptimizer writes the AdamW moments m and v (laid out as layout) as
// dir/name with tensors exp_avg.<param> and exp_avg_sq.<param>. Several
// writers may each write a file named optimizer*.safetensors holding a
// disjoint subset of the layout (pass the subset as layout).
func WriteOptimizer(dir, name string, layout []model.ParamSpec, m, v []float32) error {
	if !strings.HasPrefix(name, "optimizer") || !strings.HasSuffix(name, ".safetensors") {
		return fmt.Errorf("optimizer file name %q must match optimizer*.safetensors", name)
	}
	ts := append(model.LayoutTensors(layout, m, "exp_avg."), model.LayoutTensors(layout, v, "exp_avg_sq.")...)
	return WriteFile(dir, name, func(w io.Writer) error { return model.WriteSafetensors(w, ts, nil) })
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

// WriteState writes dir/state.json (Time is set to now if zero).
func WriteState(dir string, st State) error {
	if st.Time.IsZero() {
		st.Time = time.Now().UTC()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(dir, StateFile, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
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

// Commit writes dir/COMMIT, last: one line "sha256hex  name" per file of
// dir (sha256sum format, sorted by name; temporary files excluded). Call it
// only once every part of the checkpoint has been written (by any process).
func Commit(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var sb strings.Builder
	n := 0
	for _, e := range ents {
		name := e.Name()
		if name == CommitFile || strings.HasPrefix(name, tmpPrefix) || !e.Type().IsRegular() {
			continue
		}
		sum, err := hashFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sb, "%s  %s\n", sum, name)
		n++
	}
	if n == 0 {
		return fmt.Errorf("commit %s: no files", dir)
	}
	if err := WriteFile(dir, CommitFile, func(w io.Writer) error {
		_, err := io.WriteString(w, sb.String())
		return err
	}); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks that dir is committed and every file listed in COMMIT has
// its checksum.
func Verify(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, CommitFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", dir, ErrNotCommitted)
	}
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for _, line := range lines {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsRune(name, '/') {
			return fmt.Errorf("%s: %w: malformed COMMIT line %q", dir, ErrChecksum, line)
		}
		got, err := hashFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%s: %w: %v", dir, ErrChecksum, err)
		}
		if got != sum {
			return fmt.Errorf("%s: %w: %s has sha256 %s, COMMIT says %s", dir, ErrChecksum, name, got, sum)
		}
	}
	return nil
}

// Steps lists the checkpoint directories of runDir (committed or not) by
// step, newest first.
func Steps(runDir string) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, "checkpoints"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var steps []int64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "step_")
		if !e.IsDir() || !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			continue
		}
		steps = append(steps, n)
	}
	slices.Sort(steps)
	slices.Reverse(steps)
	return steps, nil
}

// Latest returns the newest checkpoint directory of runDir that is
// committed and whose checksums match, skipping (with a warning) newer ones
// that are incomplete or corrupt. It returns ErrNoCheckpoint if none is.
func Latest(runDir string) (string, error) {
	steps, err := Steps(runDir)
	if err != nil {
		return "", err
	}
	for _, s := range steps {
		dir := Dir(runDir, s)
		if err := Verify(dir); err != nil {
			slog.Warn("skipping checkpoint", "dir", dir, "err", err)
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("%s: %w", runDir, ErrNoCheckpoint)
}

// Prune keeps the newest keep intact checkpoints of runDir and deletes every
// older checkpoint directory (intact, incomplete or corrupt). Directories
// newer than the newest intact one are left alone: they may be in progress.
// keep ≤ 0 keeps everything.
func Prune(runDir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	steps, err := Steps(runDir)
	if err != nil {
		return err
	}
	kept := 0
	for _, s := range steps {
		dir := Dir(runDir, s)
		if kept < keep && Verify(dir) == nil {
			kept++
			continue
		}
		if kept == 0 {
			continue // newer than every intact checkpoint: maybe being written
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("prune %s: %w", dir, err)
		}
		slog.Debug("pruned checkpoint", "dir", dir)
	}
	return nil
}

// Resolve turns a --checkpoint (or init:) argument into what LoadModel
// reads: a .safetensors (or .index.json) file as is; a Hugging Face Llama
// directory (hf.IsDir, without a COMMIT marker) as is; a checkpoint
// directory (verified) to its model file; a run directory to the model file
// of its Latest checkpoint.
func Resolve(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		if strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".index.json") {
			return path, nil
		}
		return "", fmt.Errorf("%s: %w", path, errNotModel)
	}
	dir := path
	switch {
	case isHFDir(dir):
		return dir, nil
	case isCheckpointDir(dir):
		if err := Verify(dir); err != nil {
			return "", err
		}
	default:
		if _, err := os.Stat(filepath.Join(path, "checkpoints")); err != nil {
			return "", fmt.Errorf("%s: %w", path, errNotModel)
		}
		if dir, err = Latest(path); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ModelIndexFile)); err == nil {
		return filepath.Join(dir, ModelIndexFile), nil
	}
	return filepath.Join(dir, ModelFile), nil
}

var errNotModel = errors.New("not a .safetensors file, Hugging Face model directory, checkpoint dir or run dir")

func isCheckpointDir(dir string) bool {
	for _, f := range []string{CommitFile, ModelFile, ModelIndexFile, StateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// isHFDir: a Hugging Face directory, not a checkpoint that happens to hold
// a config.json.
func isHFDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, CommitFile)); err == nil {
		return false
	}
	return hf.IsDir(dir)
}

// LoadModel resolves path (see Resolve; a resolved path resolves to
// itself) and reads the model's config and parameters from it.
func LoadModel(path string) (model.Config, []float32, error) {
	f, err := Resolve(path)
	if err != nil {
		return model.Config{}, nil, err
	}
	if isHFDir(f) {
		return hf.Read(f)
	}
	return model.ReadModel(f)
}

// LoadInto resolves path (see Resolve) and reads its parameters into
// params, laid out for cfg; the file's config, if it has one, must be cfg.
// It is how a job's init: is read.
func LoadInto(path string, cfg model.Config, params []float32) error {
	f, err := Resolve(path)
	if err != nil {
		return err
	}
	if !isHFDir(f) {
		return model.LoadInto(f, cfg, params)
	}
	fc, p, err := hf.Read(f)
	if err != nil {
		return err
	}
	if fc != cfg {
		return fmt.Errorf("%s: %w: config.json gives %+v, the job's model is %+v", f, model.ErrFormat, fc, cfg)
	}
	if len(params) != len(p) {
		return fmt.Errorf("model: %d parameters, config needs %d", len(params), len(p))
	}
	copy(params, p)
	return nil
}

// WriteTokenizer copies the tokenizer files of tokDir (tokenizer.Files)
// into the checkpoint directory dir, durably (WriteFile), so that Commit
// covers them and FindTokenizer finds them.
func WriteTokenizer(dir, tokDir string) error {
	names, err := tokenizer.Files(tokDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		src, err := os.Open(filepath.Join(tokDir, n))
		if err != nil {
			return err
		}
		err = WriteFile(dir, n, func(w io.Writer) error { _, err := io.Copy(w, src); return err })
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// FindTokenizer returns the tokenizer directory that belongs with a
// --checkpoint argument (see Resolve): the directory of the model itself
// when it holds tokenizer files (checkpoints get a copy when they are
// committed; an exported Hugging Face directory has them), or else the
// tokenizer of the job recorded in the checkpoint's state.json: its
// tokenizer: key, or the tokenizer directory that ringtrain prepare
// writes beside the training shards (job.Job.TokenizerDir).
func FindTokenizer(path string) (string, error) {
	f, err := Resolve(path)
	if err != nil {
		return "", err
	}
	dir := f
	if !isHFDir(f) {
		dir = filepath.Dir(f)
	}
	if tokenizer.IsDir(dir) {
		return dir, nil
	}
	why := "it has no state.json naming its job"
	if st, err := ReadState(dir); err == nil && st.Job != "" {
		why = "its job has no tokenizer: key and no tokenizer/ directory beside data.train"
		j, err := job.Parse([]byte(st.Job), filepath.Join(dir, StateFile))
		if err != nil {
			why = fmt.Sprintf("its job does not parse: %v", err)
		} else if d := j.TokenizerDir(); d != "" {
			if tokenizer.IsDir(d) {
				return d, nil
			}
			why = fmt.Sprintf("its job's tokenizer %s is not a tokenizer directory", d)
		}
	}
	return "", fmt.Errorf("%s: no tokenizer files beside the model, and %s", dir, why)
}
