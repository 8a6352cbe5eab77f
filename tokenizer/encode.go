package tokenizer

import (
	"container/heap"
	"slices"
	"unsafe"
)

// maxCacheEntries bounds each encoder's piece cache; a full cache is cleared.
const maxCacheEntries = 1 << 17

// longPiece is the piece length (in bytes) from which bpe switches from the
// simple quadratic loop to the heap, so no input is quadratic.
const longPiece = 64

// encoder holds one goroutine's scratch space and cache of encoded pieces.
type encoder struct {
	t     *Tokenizer
	cache map[string][]int
	syms  []int32
}

func (t *Tokenizer) getEncoder() *encoder {
	if e, ok := t.encoders.Get().(*encoder); ok {
		return e
	}
	return &encoder{t: t, cache: make(map[string][]int, 1024)}
}

func (t *Tokenizer) putEncoder(e *encoder) { t.encoders.Put(e) }

// Encode returns the token ids of text. Special tokens of the tokenizer are
// matched first (leftmost, then longest); the text between them is split
// into GPT-2 pre-tokens and each pre-token is encoded by applying merges in
// priority order. Any byte string is accepted, valid UTF-8 or not.
func (t *Tokenizer) Encode(text string) []int {
	return t.EncodeBytes(unsafe.Slice(unsafe.StringData(text), len(text)))
}

// EncodeBytes is Encode for a byte slice.
func (t *Tokenizer) EncodeBytes(text []byte) []int {
	if len(text) == 0 {
		return nil
	}
	return t.AppendEncode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode appends the token ids of text to dst.
func (t *Tokenizer) AppendEncode(dst []int, text []byte) []int {
	e := t.getEncoder()
	defer t.putEncoder(e)
	t.sm.scan(text, func(start, end, special int) {
		if special >= 0 {
			dst = append(dst, int(t.specID[special]))
			return
		}
		seg := text[start:end]
		for i := 0; i < len(seg); {
			j := nextPreToken(seg, i)
			dst = e.appendPiece(dst, seg[i:j])
			i = j
		}
	})
	return dst
}

// appendPiece appends the ids of one pre-token, through the cache.
func (e *encoder) appendPiece(dst []int, piece []byte) []int {
	if len(piece) == 1 {
		return append(dst, int(e.t.byteID[piece[0]]))
	}
	if ids, ok := e.cache[string(piece)]; ok {
		return append(dst, ids...)
	}
	start := len(dst)
	e.syms = e.t.bpe(e.syms[:0], piece)
	for _, s := range e.syms {
		dst = append(dst, int(s))
	}
	if len(e.cache) >= maxCacheEntries {
		clear(e.cache)
	}
	e.cache[string(piece)] = slices.Clip(dst[start:len(dst):len(dst)])
	return dst
}

// bpe encodes one pre-token into syms (reused scratch space): starting from
// its bytes, it repeatedly takes the adjacent pair of lowest merge rank and
// merges all of its occurrences from left to right.
func (t *Tokenizer) bpe(syms []int32, piece []byte) []int32 {
	for _, c := range piece {
		syms = append(syms, t.byteID[c])
	}
	if len(syms) >= longPiece {
		return t.bpeHeap(syms)
	}
	for len(syms) > 1 {
		best, at := int32(len(t.merges)), -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[pairKey(syms[i], syms[i+1])]; ok && r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b, to := t.merges[best][0], t.merges[best][1], t.mergeTo[best]
		out := syms[:at]
		for i := at; i < len(syms); {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, to)
				i += 2
			} else {
				out = append(out, syms[i])
				i++
			}
		}
		syms = out
	}
	return syms
}

// rankPos is a candidate merge of the pair starting at node pos.
type rankPos struct{ rank, pos int32 }

type rankHeap []rankPos

func (h rankHeap) Len() int { return len(h) }
func (h rankHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h rankHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)   { *h = append(*h, x.(rankPos)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpeHeap is bpe in O(n log n) for long pieces: the symbols form a linked
// list and candidate pairs sit in a heap ordered by (rank, position), which
// merges in the same order as the quadratic loop (a pair created by a merge
// always has a higher rank than the merge that created it).
func (t *Tokenizer) bpeHeap(syms []int32) []int32 {
	n := len(syms)
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	h := make(rankHeap, 0, n)
	for i := 0; i+1 < n; i++ {
		if r, ok := t.ranks[pairKey(syms[i], syms[i+1])]; ok {
			h = append(h, rankPos{r, int32(i)})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		top := heap.Pop(&h).(rankPos)
		i := top.pos
		if syms[i] < 0 {
			continue
		}
		j := next[i]
		if j < 0 {
			continue
		}
		if r, ok := t.ranks[pairKey(syms[i], syms[j])]; !ok || r != top.rank {
			continue // stale: the pair at i changed since it was pushed
		}
		syms[i] = t.mergeTo[top.rank]
		syms[j] = -1
		nj := next[j]
		next[i] = nj
		if nj >= 0 {
			prev[nj] = i
			if r, ok := t.ranks[pairKey(syms[i], syms[nj])]; ok {
				heap.Push(&h, rankPos{r, i})
			}
		}
		if p := prev[i]; p >= 0 {
			if r, ok := t.ranks[pairKey(syms[p], syms[i])]; ok {
				heap.Push(&h, rankPos{r, p})
			}
		}
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}
