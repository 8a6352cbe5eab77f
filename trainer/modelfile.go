package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/hf"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
)

var errNotModel = errors.New("not a .safetensors file, Hugging Face model directory, checkpoint dir or run dir")

// ModelPath turns a --checkpoint (or init:) argument into what LoadModel
// reads: a .safetensors (or .index.json) file as is; a Hugging Face Llama
// directory (hf.IsDir, without a COMMIT marker) as is; a checkpoint
// directory (verified) to its model file; a run directory to the model
// file of its newest intact checkpoint. A resolved path resolves to itself.
func ModelPath(path string) (string, error) {
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
		if err := checkpoint.Verify(dir); err != nil {
			return "", err
		}
	case isDir(filepath.Join(path, checkpoint.DirName)):
		if dir, _, err = checkpoint.Latest(path); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("%s: %w", path, errNotModel)
	}
	if _, err := os.Stat(filepath.Join(dir, ModelIndexFile)); err == nil {
		return filepath.Join(dir, ModelIndexFile), nil
	}
	return filepath.Join(dir, ModelFile), nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isCheckpointDir(dir string) bool {
	for _, f := range []string{checkpoint.CommitFile, ModelFile, ModelIndexFile, StateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// isHFDir: a Hugging Face directory, not a checkpoint that happens to hold
// a config.json.
func isHFDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, checkpoint.CommitFile)); err == nil {
		return false
	}
	return hf.IsDir(dir)
}

// LoadModel resolves path (see ModelPath) and reads the model's config and
// parameters from it.
func LoadModel(path string) (model.Config, []float32, error) {
	f, err := ModelPath(path)
	if err != nil {
		return model.Config{}, nil, err
	}
	if isHFDir(f) {
		return hf.Read(f)
	}
	return model.ReadModel(f)
}

// LoadInto resolves path (see ModelPath) and reads its parameters into
// params, which must have cfg's layout; the file's config, if it has one,
// must be cfg. It reads a job's init: and a checkpoint's model file.
func LoadInto(path string, cfg model.Config, params []float32) error {
	f, err := ModelPath(path)
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

// WriteTokenizer writes the tokenizer files of tokDir (tokenizer.Files)
// through w, into a checkpoint, so that FindTokenizer finds them there.
func WriteTokenizer(w FileWriter, tokDir string) error {
	names, err := tokenizer.Files(tokDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		src, err := os.Open(filepath.Join(tokDir, n))
		if err != nil {
			return err
		}
		err = w(n, func(out io.Writer) error { _, err := io.Copy(out, src); return err })
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// FindTokenizer returns the tokenizer directory that belongs with a
// --checkpoint argument (see ModelPath): the directory of the model itself
// when it holds tokenizer files (checkpoints get a copy; an exported
// Hugging Face directory has them), or else the tokenizer of the job
// recorded in the checkpoint's state.json: its tokenizer: key, or the
// tokenizer directory that ringtrain prepare writes beside the training
// shards (job.Job.TokenizerDir).
func FindTokenizer(path string) (string, error) {
	f, err := ModelPath(path)
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
	if st, err := ReadState(dir); err == nil && len(st.Job) > 0 {
		why = "its job has no tokenizer: key and no tokenizer/ directory beside data.train"
		var j job.Job
		if err := json.Unmarshal(st.Job, &j); err != nil {
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
