package shard

import (
	"fmt"
	"path/filepath"
	"sort"
)

// Dataset is the list of training sequences of context T over a set of
// shards (docs/data.md). Shard f, in file-name order, holds
// S_f = ⌊(n_f−1)/T⌋ sequences; sequence k of it is
// x = tok[k·T : k·T+T], y = tok[k·T+1 : k·T+T+1]. The list is shard 0's
// sequences, then shard 1's, and so on; global index i means list entry
// i mod ΣS_f. A Dataset is safe for concurrent reads.
type Dataset struct {
	shards []*Shard
	starts []int // starts[f] = S_0 + … + S_{f−1}; len(shards)+1 entries
	t      int
	vocab  int
	tokens int64
}

// OpenGlob opens every file matching pattern (sorted by name) as a shard
// with the given vocabulary size and context T. It fails if the pattern
// matches nothing, or any shard is invalid or shorter than one sequence
// (T+1 tokens).
func OpenGlob(pattern string, vocabSize, T int, opts ...Option) (*Dataset, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("data glob %q: %w", pattern, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("data glob %q: %w", pattern, ErrNoFiles)
	}
	return OpenFiles(files, vocabSize, T, opts...)
}

// OpenFiles is OpenGlob over an explicit list of files; they are sorted by
// name (a copy; files is not modified).
func OpenFiles(files []string, vocabSize, T int, opts ...Option) (*Dataset, error) {
	if T < 1 {
		return nil, fmt.Errorf("context length %d: must be at least 1", T)
	}
	if len(files) == 0 {
		return nil, ErrNoFiles
	}
	files = append([]string(nil), files...)
	sort.Strings(files)
	ds := &Dataset{t: T, vocab: vocabSize, starts: make([]int, 1, len(files)+1)}
	for _, p := range files {
		s, err := Open(p, vocabSize, opts...)
		if err != nil {
			ds.Close()
			return nil, err
		}
		ds.shards = append(ds.shards, s)
		if n := s.Len(); n < T+1 {
			ds.Close()
			return nil, fmt.Errorf("shard %s: %w: %d tokens, a sequence of context %d needs %d", p, ErrTooShort, n, T, T+1)
		}
		ds.tokens += int64(s.Len())
		ds.starts = append(ds.starts, ds.starts[len(ds.starts)-1]+(s.Len()-1)/T)
	}
	return ds, nil
}

// NumSequences returns ΣS_f, the length of the sequence list (one epoch).
func (d *Dataset) NumSequences() int { return d.starts[len(d.starts)-1] }

// NumTokens returns the total number of tokens over all shards.
func (d *Dataset) NumTokens() int64 { return d.tokens }

// ContextLength returns T.
func (d *Dataset) ContextLength() int { return d.t }

// VocabSize returns the vocabulary size the shards were checked against.
func (d *Dataset) VocabSize() int { return d.vocab }

// Shards returns the opened shards in list order.
func (d *Dataset) Shards() []*Shard { return d.shards }

// View returns tok[k·T : k·T+T+1] of the shard holding global sequence i
// (taken mod NumSequences; i ≥ 0): x is View[:T], y is View[1:]. It is a
// read-only view into the mapping, valid until Close.
func (d *Dataset) View(i int) []uint16 {
	i %= d.NumSequences()
	// The shard f with starts[f] ≤ i < starts[f+1].
	f := sort.Search(len(d.shards), func(f int) bool { return d.starts[f+1] > i })
	k := i - d.starts[f]
	return d.shards[f].tokens[k*d.t : k*d.t+d.t+1]
}

// Sequence writes the input x and target y of global sequence i (mod
// NumSequences; i ≥ 0) into the first T entries of x and y.
func (d *Dataset) Sequence(i int, x, y []int32) {
	v := d.View(i)
	x, y = x[:d.t], y[:d.t] // bounds checks once; panics if too short
	for j := range x {
		x[j] = int32(v[j])
		y[j] = int32(v[j+1])
	}
}

// Close unmaps every shard. It is idempotent.
func (d *Dataset) Close() error {
	var first error
	for _, s := range d.shards {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
