package tokenizer

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
)

// ErrBadConfig reports an invalid TrainConfig.
var ErrBadConfig = errors.New("invalid training config")

// TrainConfig configures Train.
type TrainConfig struct {
	// VocabSize is the final vocabulary size: special tokens, the 256 bytes
	// and VocabSize-256-len(Special) merges (fewer if the text runs out of pairs).
	VocabSize int
	// Special tokens get the first ids. The text is split at them; they are
	// never merged and add no counts.
	Special []string
	// Workers pre-tokenize in parallel; 0 means GOMAXPROCS.
	Workers int
	// ChunkSize is how many bytes are read at a time; 0 means 1 MiB.
	ChunkSize int
	// Progress, when set, is called with stage "count" (done = bytes read,
	// total = input size or -1 when unknown) and stage "merge" (done =
	// merges made, total = merges wanted).
	Progress func(stage string, done, total int64)
}

// DefaultTrainConfig returns a config for vocabulary size n with <|endoftext|> as special token.
func DefaultTrainConfig(n int) TrainConfig {
	return TrainConfig{VocabSize: n, Special: []string{EndOfText}}
}

// Validate reports the first invalid field, by name.
func (c TrainConfig) Validate() error {
	if min := 256 + len(c.Special); c.VocabSize < min {
		return fmt.Errorf("%w: VocabSize %d is below %d (256 bytes + %d special tokens)", ErrBadConfig, c.VocabSize, min, len(c.Special))
	}
	seen := map[string]bool{}
	for _, s := range c.Special {
		switch {
		case len(s) < 2:
			return fmt.Errorf("%w: Special %q: a special token needs at least 2 bytes (single bytes are regular tokens)", ErrBadConfig, s)
		case seen[s]:
			return fmt.Errorf("%w: Special %q given twice", ErrBadConfig, s)
		}
		seen[s] = true
	}
	if c.Workers < 0 {
		return fmt.Errorf("%w: Workers %d is negative", ErrBadConfig, c.Workers)
	}
	if c.ChunkSize < 0 {
		return fmt.Errorf("%w: ChunkSize %d is negative", ErrBadConfig, c.ChunkSize)
	}
	return nil
}

// Train learns a byte-level BPE tokenizer from the concatenation-free union
// of inputs (each input is split on its own; pre-token counts are summed).
func Train(cfg TrainConfig, inputs ...io.Reader) (*Tokenizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	counts := Counts{}
	for _, r := range inputs {
		if err := CountPreTokens(r, counts, cfg.countOptions(0, -1)); err != nil {
			return nil, err
		}
	}
	return TrainCounts(counts, cfg)
}

// TrainFiles is Train on files, read in streaming fashion.
func TrainFiles(cfg TrainConfig, paths ...string) (*Tokenizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		total += st.Size()
	}
	if cfg.ChunkSize == 0 {
		// Small inputs still get a few chunks per worker, large ones 1 MiB chunks.
		w := cfg.Workers
		if w == 0 {
			w = runtime.GOMAXPROCS(0)
		}
		cfg.ChunkSize = int(min(max(total/int64(4*w), 16<<10), defaultChunkSize))
	}
	counts := Counts{}
	var done int64
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = CountPreTokens(f, counts, cfg.countOptions(done, total))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		st, _ := os.Stat(p)
		done += st.Size()
	}
	return TrainCounts(counts, cfg)
}

func (c TrainConfig) countOptions(offset, total int64) CountOptions {
	opt := CountOptions{Special: c.Special, Workers: c.Workers, ChunkSize: c.ChunkSize}
	if c.Progress != nil {
		opt.Progress = func(n int64) { c.Progress("count", offset+n, total) }
	}
	return opt
}

// TrainCounts runs the BPE merges on pre-token counts. The vocabulary is the
// special tokens (ids 0..S-1), then the 256 bytes in GPT-2's order (printable
// bytes first, as in GPT-2's vocab.json), then one token per merge. Each step
// merges the most frequent adjacent pair, ties going to the lexicographically
// greater pair of byte strings (first token compared first).
func TrainCounts(counts Counts, cfg TrainConfig) (*Tokenizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := newTrainer(counts, cfg.Special)
	want := cfg.VocabSize - len(tr.vocab)
	var merges [][2][]byte
	for k := range want {
		a, b, ok, err := tr.step()
		if err != nil {
			return nil, err
		}
		if !ok {
			break // every pre-token is a single token
		}
		merges = append(merges, [2][]byte{tr.vocab[a], tr.vocab[b]})
		if cfg.Progress != nil {
			cfg.Progress("merge", int64(k+1), int64(want))
		}
	}
	return New(tr.vocab, merges, cfg.Special)
}

type trainWord struct {
	syms  []int32
	count int64
}

type pairEntry struct {
	count int64
	pair  uint64
}

// trainer keeps, for every adjacent pair, its total count and the words it
// occurs in (a superset: stale entries are skipped), and a max-heap of pairs
// with lazy updates (an entry's count is never below the pair's true count;
// an entry popped with a wrong count is pushed back with the true one).
type trainer struct {
	vocab     [][]byte
	ids       map[string]bool
	words     []trainWord
	pairCount map[uint64]int64
	pairWords map[uint64][]int32
	mark      []int32 // mark[w] = step that last updated word w
	heap      []pairEntry
	steps     int32
	touched   []uint64
}

func newTrainer(counts Counts, special []string) *trainer {
	tr := &trainer{
		ids:       map[string]bool{},
		pairCount: map[uint64]int64{},
		pairWords: map[uint64][]int32{},
	}
	for _, s := range special {
		tr.vocab = append(tr.vocab, []byte(s))
		tr.ids[s] = true
	}
	var byteID [256]int32
	for k := range 256 {
		b := gpt2Order[k]
		byteID[b] = int32(len(tr.vocab))
		tr.vocab = append(tr.vocab, []byte{b})
		tr.ids[string([]byte{b})] = true
	}
	// Sorted pre-tokens make the word numbering deterministic.
	toks := make([]string, 0, len(counts))
	for tok := range counts {
		toks = append(toks, tok)
	}
	slices.Sort(toks)
	for _, tok := range toks {
		if len(tok) < 2 || counts[tok] <= 0 {
			continue // no pairs
		}
		syms := make([]int32, len(tok))
		for i := 0; i < len(tok); i++ {
			syms[i] = byteID[tok[i]]
		}
		w := int32(len(tr.words))
		tr.words = append(tr.words, trainWord{syms, counts[tok]})
		for i := 0; i+1 < len(syms); i++ {
			p := pairKey(syms[i], syms[i+1])
			tr.pairCount[p] += counts[tok]
			if ws := tr.pairWords[p]; len(ws) == 0 || ws[len(ws)-1] != w {
				tr.pairWords[p] = append(ws, w)
			}
		}
	}
	tr.mark = make([]int32, len(tr.words))
	for i := range tr.mark {
		tr.mark[i] = -1
	}
	tr.heap = make([]pairEntry, 0, len(tr.pairCount))
	for p, c := range tr.pairCount {
		tr.heap = append(tr.heap, pairEntry{c, p})
	}
	heap.Init((*pairHeap)(tr))
	return tr
}

// pairHeap orders the trainer's heap: higher count first, then the
// lexicographically greater pair of byte strings.
type pairHeap trainer

func (h *pairHeap) Len() int { return len(h.heap) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.heap[i], h.heap[j]
	if x.count != y.count {
		return x.count > y.count
	}
	xa, xb := int32(x.pair>>32), int32(uint32(x.pair))
	ya, yb := int32(y.pair>>32), int32(uint32(y.pair))
	if c := bytes.Compare(h.vocab[xa], h.vocab[ya]); c != 0 {
		return c > 0
	}
	return bytes.Compare(h.vocab[xb], h.vocab[yb]) > 0
}
func (h *pairHeap) Swap(i, j int) { h.heap[i], h.heap[j] = h.heap[j], h.heap[i] }
func (h *pairHeap) Push(x any)    { h.heap = append(h.heap, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	x := h.heap[len(h.heap)-1]
	h.heap = h.heap[:len(h.heap)-1]
	return x
}

// best pops the most frequent pair, fixing stale entries on the way.
func (tr *trainer) best() (uint64, bool) {
	h := (*pairHeap)(tr)
	for len(tr.heap) > 0 {
		e := heap.Pop(h).(pairEntry)
		c := tr.pairCount[e.pair]
		if c == e.count {
			return e.pair, true
		}
		if c > 0 {
			heap.Push(h, pairEntry{c, e.pair})
		}
	}
	return 0, false
}

func (tr *trainer) dec(p uint64, c int64) {
	n := tr.pairCount[p] - c
	if n <= 0 {
		delete(tr.pairCount, p)
		delete(tr.pairWords, p)
		return
	}
	tr.pairCount[p] = n
}

func (tr *trainer) inc(p uint64, c int64, w int32) {
	old := tr.pairCount[p]
	if old == 0 {
		tr.touched = append(tr.touched, p)
	}
	tr.pairCount[p] = old + c
	if ws := tr.pairWords[p]; len(ws) == 0 || ws[len(ws)-1] != w {
		tr.pairWords[p] = append(ws, w)
	}
}

// step makes one merge and returns the pair it merged; ok is false when no
// pair is left.
func (tr *trainer) step() (a, b int32, ok bool, err error) {
	p, ok := tr.best()
	if !ok {
		return 0, 0, false, nil
	}
	a, b = int32(p>>32), int32(uint32(p))
	merged := append(append([]byte{}, tr.vocab[a]...), tr.vocab[b]...)
	n := int32(len(tr.vocab))
	tr.vocab = append(tr.vocab, merged)
	// Tokens are unique by construction (no adjacent a,b survives the merge
	// of (a,b)); keep the set to catch a violation rather than corrupt vocab.json.
	if tr.ids[string(merged)] {
		return 0, 0, false, fmt.Errorf("BPE training produced the token %q twice (merge %d)", merged, tr.steps)
	}
	tr.ids[string(merged)] = true
	step := tr.steps
	tr.steps++
	tr.touched = tr.touched[:0]
	for _, w := range tr.pairWords[p] {
		if tr.mark[w] == step {
			continue
		}
		tr.mark[w] = step
		tr.mergeWord(w, a, b, n)
	}
	delete(tr.pairCount, p)
	delete(tr.pairWords, p)
	h := (*pairHeap)(tr)
	for _, q := range tr.touched {
		if c := tr.pairCount[q]; c > 0 {
			heap.Push(h, pairEntry{c, q})
		}
	}
	return a, b, true, nil
}

// mergeWord replaces each (a,b) in word w, left to right, by n and updates
// the counts of the neighbouring pairs.
func (tr *trainer) mergeWord(w int32, a, b, n int32) {
	wd := &tr.words[w]
	seq, c := wd.syms, wd.count
	out := seq[:0] // writes never pass reads
	lastEnd := -1
	for i := 0; i < len(seq); {
		if i+1 < len(seq) && seq[i] == a && seq[i+1] == b {
			if i > 0 {
				if lastEnd == i { // ... a b | a b ...: old pair (b,a), new pair (n,n)
					tr.dec(pairKey(b, a), c)
					tr.inc(pairKey(n, n), c, w)
				} else {
					left := seq[i-1]
					tr.dec(pairKey(left, a), c)
					tr.inc(pairKey(left, n), c, w)
				}
			}
			if i+2 < len(seq) && !(i+3 < len(seq) && seq[i+2] == a && seq[i+3] == b) {
				right := seq[i+2]
				tr.dec(pairKey(b, right), c)
				tr.inc(pairKey(n, right), c, w)
			}
			out = append(out, n)
			i += 2
			lastEnd = i
		} else {
			out = append(out, seq[i])
			i++
		}
	}
	wd.syms = out
}
