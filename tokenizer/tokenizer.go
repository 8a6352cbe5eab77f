package tokenizer

import (
	"errors"
	"fmt"
	"sync"
)

// Errors returned by the package; wrapped with context, test with errors.Is.
var (
	ErrUnknownID = errors.New("token id out of range")
	ErrBadVocab  = errors.New("invalid vocabulary")
	ErrBadMerges = errors.New("invalid merges")
)

// Tokenizer is a byte-level BPE tokenizer: a vocabulary of byte strings, an
// ordered list of merges and a list of special tokens. It is safe for
// concurrent use.
type Tokenizer struct {
	vocab    [][]byte         // id → token bytes
	ids      map[string]int32 // token bytes → id (the regular tokens)
	merges   [][2]int32       // merge k joins merges[k][0] and merges[k][1] ...
	mergeTo  []int32          // ... into the token mergeTo[k]
	ranks    map[uint64]int32 // pair → rank k
	byteID   [256]int32
	special  []string // in the order given
	specID   []int32  // id of special[k]
	sm       *specialMatcher
	encoders *sync.Pool // of *encoder: per-goroutine piece caches, no locking

	chunkSize int // EncodeStream chunk size; 0 means defaultChunkSize (tests lower it)
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// New builds a tokenizer from vocab (vocab[id] is the token's bytes), merges
// in priority order (each pair and its concatenation must be in vocab) and
// special tokens. A special token already in vocab keeps its id; the others
// are appended to the vocabulary in the order given. All 256 single bytes
// must be in vocab.
func New(vocab [][]byte, merges [][2][]byte, special []string) (*Tokenizer, error) {
	t := &Tokenizer{
		vocab:    make([][]byte, len(vocab), len(vocab)+len(special)),
		ids:      make(map[string]int32, len(vocab)),
		encoders: &sync.Pool{},
	}
	for id, tok := range vocab {
		if len(tok) == 0 {
			return nil, fmt.Errorf("%w: token %d is empty", ErrBadVocab, id)
		}
		if prev, dup := t.ids[string(tok)]; dup {
			return nil, fmt.Errorf("%w: tokens %d and %d are both %q", ErrBadVocab, prev, id, tok)
		}
		t.vocab[id] = tok
		t.ids[string(tok)] = int32(id)
	}
	for b := range 256 {
		id, ok := t.ids[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("%w: no token for byte 0x%02x", ErrBadVocab, b)
		}
		t.byteID[b] = id
	}
	t.ranks = make(map[uint64]int32, len(merges))
	t.merges = make([][2]int32, 0, len(merges))
	t.mergeTo = make([]int32, 0, len(merges))
	for k, m := range merges {
		a, okA := t.ids[string(m[0])]
		b, okB := t.ids[string(m[1])]
		if !okA || !okB {
			return nil, fmt.Errorf("%w: merge %d (%q %q) uses a token missing from the vocabulary", ErrBadMerges, k, m[0], m[1])
		}
		to, ok := t.ids[string(m[0])+string(m[1])]
		if !ok {
			return nil, fmt.Errorf("%w: merge %d (%q %q) makes %q, which is missing from the vocabulary", ErrBadMerges, k, m[0], m[1], string(m[0])+string(m[1]))
		}
		key := pairKey(a, b)
		if _, dup := t.ranks[key]; dup {
			continue // a repeated merge never applies again; keep the first
		}
		t.ranks[key] = int32(len(t.merges))
		t.merges = append(t.merges, [2]int32{a, b})
		t.mergeTo = append(t.mergeTo, to)
	}
	seen := map[string]bool{}
	for _, s := range special {
		if s == "" {
			return nil, fmt.Errorf("%w: empty special token", ErrBadVocab)
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		id, ok := t.ids[s]
		if !ok {
			id = int32(len(t.vocab))
			t.vocab = append(t.vocab, []byte(s))
			t.ids[s] = id
		}
		t.special = append(t.special, s)
		t.specID = append(t.specID, id)
	}
	t.sm = newSpecialMatcher(t.special)
	return t, nil
}

// VocabSize is the number of token ids (special tokens included).
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Token returns the bytes of token id (nil when out of range). Do not modify them.
func (t *Tokenizer) Token(id int) []byte {
	if id < 0 || id >= len(t.vocab) {
		return nil
	}
	return t.vocab[id]
}

// ID returns the id of the token whose bytes are tok.
func (t *Tokenizer) ID(tok []byte) (int, bool) {
	id, ok := t.ids[string(tok)]
	return int(id), ok
}

// SpecialTokens returns the special tokens that Encode recognises, in order.
func (t *Tokenizer) SpecialTokens() []string { return append([]string(nil), t.special...) }

// SpecialID returns the id of special token s.
func (t *Tokenizer) SpecialID(s string) (int, bool) {
	for k, sp := range t.special {
		if sp == s {
			return int(t.specID[k]), true
		}
	}
	return 0, false
}

// Vocab returns a copy of the vocabulary: Vocab()[id] is token id's bytes.
func (t *Tokenizer) Vocab() [][]byte { return append([][]byte(nil), t.vocab...) }

// Merges returns the merges in priority order as pairs of token bytes.
func (t *Tokenizer) Merges() [][2][]byte {
	out := make([][2][]byte, len(t.merges))
	for k, m := range t.merges {
		out[k] = [2][]byte{t.vocab[m[0]], t.vocab[m[1]]}
	}
	return out
}

// Decode concatenates the bytes of ids. It is the exact inverse of Encode on
// any byte string; the result need not be valid UTF-8 (a prefix of a
// sequence may end inside a character).
func (t *Tokenizer) Decode(ids []int) ([]byte, error) { return t.AppendDecode(nil, ids) }

// AppendDecode appends the bytes of ids to dst.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int) ([]byte, error) {
	for k, id := range ids {
		if id < 0 || id >= len(t.vocab) {
			return dst, fmt.Errorf("%w: id %d at position %d (vocabulary size %d)", ErrUnknownID, id, k, len(t.vocab))
		}
		dst = append(dst, t.vocab[id]...)
	}
	return dst, nil
}
