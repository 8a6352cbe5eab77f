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
)

// Names of the protocol: RUN/DirName/step_NNNNNNNN/, whose COMMIT marker
// is written last, and state.json, the one file every checkpoint has.
const (
	DirName    = "checkpoints"
	StateFile  = "state.json"
	CommitFile = "COMMIT"

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

// Dir is RUN/checkpoints/step_NNNNNNNN for the given step (steps
// completed).
func Dir(runDir string, step int64) string {
	return filepath.Join(runDir, DirName, fmt.Sprintf("step_%08d", step))
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

// Meta is the part of state.json that the protocol itself reads: which
// state the checkpoint holds (the rest of state.json is the trainer's).
type Meta struct {
	// Step is the number of optimizer steps completed.
	Step int64 `json:"step"`
	// Generation is the generation whose ring computed the newest step
	// (0 for states of a single process): with Step, the state's version.
	Generation int64 `json:"generation"`
}

// ReadMeta reads the Meta of dir/state.json.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return m, nil
}

// FileSum is one line of COMMIT: a file of the checkpoint and its sha256.
type FileSum struct {
	Name   string
	SHA256 string // hex
}

// Files returns the files COMMIT lists, in its order (by name), without
// checking them.
func Files(dir string) ([]FileSum, error) {
	b, err := os.ReadFile(filepath.Join(dir, CommitFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotCommitted)
	}
	if err != nil {
		return nil, err
	}
	var out []FileSum
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || !ValidName(name) {
			return nil, fmt.Errorf("%s: %w: malformed COMMIT line %q", dir, ErrChecksum, line)
		}
		out = append(out, FileSum{Name: name, SHA256: sum})
	}
	return out, nil
}

// ValidName reports whether name can be a file of a checkpoint directory:
// a plain file name, not the commit marker, not a temporary file.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && name != CommitFile &&
		!strings.ContainsAny(name, "/\\\x00") && !strings.HasPrefix(name, tmpPrefix)
}

// Verify checks that dir is committed and every file listed in COMMIT has
// its checksum.
func Verify(dir string) error {
	files, err := Files(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		got, err := hashFile(filepath.Join(dir, f.Name))
		if err != nil {
			return fmt.Errorf("%s: %w: %v", dir, ErrChecksum, err)
		}
		if got != f.SHA256 {
			return fmt.Errorf("%s: %w: %s has sha256 %s, COMMIT says %s", dir, ErrChecksum, f.Name, got, f.SHA256)
		}
	}
	return nil
}

// Steps lists the checkpoint directories of runDir (committed or not) by
// step, newest first.
func Steps(runDir string) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, DirName))
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
// committed and whose checksums match, and its step, skipping (with a
// warning) newer ones that are incomplete or corrupt. It returns
// ErrNoCheckpoint if none is.
func Latest(runDir string) (string, int64, error) {
	steps, err := Steps(runDir)
	if err != nil {
		return "", -1, err
	}
	for _, s := range steps {
		dir := Dir(runDir, s)
		if err := Verify(dir); err != nil {
			slog.Warn("skipping checkpoint", "dir", dir, "err", err)
			continue
		}
		return dir, s, nil
	}
	return "", -1, fmt.Errorf("%s: %w", runDir, ErrNoCheckpoint)
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
