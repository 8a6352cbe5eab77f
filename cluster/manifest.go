package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ringtrain/ringtrain/job"
)

// ShardInfo is one data file of a manifest.
type ShardInfo struct {
	Name   string `json:"name"` // base name
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest lists the job's data files, train then val, each in file-name
// order (the order the dataset reads them), with sizes and content hashes.
// The coordinator publishes it; every worker checks its own copy against
// it before it registers, so that all ranks train on the same data without
// a shared filesystem.
type Manifest struct {
	Train  []ShardInfo `json:"train"`
	Val    []ShardInfo `json:"val,omitempty"`
	Digest string      `json:"digest"` // sha256 over the entries
}

// ErrDataDiffers: this machine's copy of the data is not the coordinator's.
var ErrDataDiffers = errors.New("data differs from the coordinator's")

// BuildManifest hashes the files the job's data globs match. Hashes are
// cached per process by path, size and modification time, so a file is
// read once.
func BuildManifest(j *job.Job) (Manifest, error) {
	var m Manifest
	var err error
	if m.Train, err = globInfo("data.train", j.Data.Train); err != nil {
		return Manifest{}, err
	}
	if j.Data.Val != "" {
		if m.Val, err = globInfo("data.val", j.Data.Val); err != nil {
			return Manifest{}, err
		}
	}
	m.Digest = m.digest()
	return m, nil
}

func (m Manifest) digest() string {
	h := sha256.New()
	for _, part := range [][]ShardInfo{m.Train, m.Val} {
		for _, s := range part {
			fmt.Fprintf(h, "%s %d %s\n", s.Name, s.Size, s.SHA256)
		}
		h.Write([]byte("--\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Check compares this machine's files of the job's data with m and names
// the first shard that differs.
func (m Manifest) Check(j *job.Job) error {
	local, err := BuildManifest(j)
	if err != nil {
		return err
	}
	if local.Digest == m.Digest {
		return nil
	}
	for _, part := range []struct {
		key, glob  string
		want, have []ShardInfo
	}{{"data.train", j.Data.Train, m.Train, local.Train}, {"data.val", j.Data.Val, m.Val, local.Val}} {
		for i := range max(len(part.want), len(part.have)) {
			switch {
			case i >= len(part.have):
				return fmt.Errorf("%w: %s %s: shard %s is missing here", ErrDataDiffers, part.key, part.glob, part.want[i].Name)
			case i >= len(part.want):
				return fmt.Errorf("%w: %s %s: shard %s is not in the coordinator's data", ErrDataDiffers, part.key, part.glob, part.have[i].Name)
			case part.want[i] != part.have[i]:
				w, h := part.want[i], part.have[i]
				return fmt.Errorf("%w: %s %s: shard %s here is %d bytes with sha256 %.12s…, the coordinator's %s is %d bytes with sha256 %.12s…",
					ErrDataDiffers, part.key, part.glob, h.Name, h.Size, h.SHA256, w.Name, w.Size, w.SHA256)
			}
		}
	}
	return fmt.Errorf("%w: manifest digest %s, coordinator's %s", ErrDataDiffers, local.Digest, m.Digest)
}

func globInfo(key, pattern string) ([]ShardInfo, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", key, pattern, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s %q: no files match", key, pattern)
	}
	sort.Strings(files)
	out := make([]ShardInfo, 0, len(files))
	for _, f := range files {
		sum, size, err := hashCached(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, ShardInfo{Name: filepath.Base(f), Size: size, SHA256: sum})
	}
	return out, nil
}

type hashKey struct {
	path  string
	size  int64
	mtime time.Time
}

var hashes sync.Map // hashKey → string

func hashCached(path string) (string, int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s: not a regular file", path)
	}
	k := hashKey{abs, fi.Size(), fi.ModTime()}
	if v, ok := hashes.Load(k); ok {
		return v.(string), fi.Size(), nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	hashes.Store(k, sum)
	return sum, fi.Size(), nil
}

// String is a short description for logs.
func (m Manifest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d train + %d val shards, digest %.12s", len(m.Train), len(m.Val), m.Digest)
	return b.String()
}
