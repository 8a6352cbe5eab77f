package tokenizer

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// defaultChunkSize is how much text the streaming paths (training, EncodeStream)
// read at a time; a chunk grows past it only while no safe boundary is found.
const defaultChunkSize = 1 << 20

// safeCut returns the largest position p in (0, len(b)] at which b can be cut
// so that splitting b[:p] and the rest separately, at special tokens and into
// pre-tokens, gives exactly the pieces of the whole; 0 when there is none yet.
// More text may follow b.
//
// Two kinds of position are safe. The end of a special token occurrence whose
// start lies at least maxLen before the end of b (so no longer token could
// still start there). And, past the last such occurrence and before that
// limit, an ASCII whitespace byte whose preceding character is not
// whitespace: the pre-token holding the previous character is a run that
// cannot contain whitespace, so it ends there in both cases, and every
// pattern alternative only looks forward from a pre-token's start.
func safeCut(b []byte, sm *specialMatcher) int {
	limit := len(b)
	if sm != nil && sm.maxLen > 0 {
		limit = len(b) - sm.maxLen + 1
	}
	if limit <= 0 {
		return 0
	}
	last := 0
	if sm != nil && sm.maxLen > 0 {
		last = sm.lastEnd(b, limit)
	}
	for p := limit - 1; p > last; p-- {
		switch b[p] {
		case ' ', '\n', '\t', '\r', '\v', '\f':
		default:
			continue
		}
		r, size := utf8.DecodeLastRune(b[:p])
		if size == 1 && r == utf8.RuneError {
			return p // an invalid byte counts as a symbol
		}
		if runeClass(r) != clsSpace {
			return p
		}
	}
	return last
}

// chunker reads r in pieces that end at safe boundaries (see safeCut).
type chunker struct {
	r    io.Reader
	sm   *specialMatcher
	size int
	buf  []byte
	eof  bool
	read int64 // bytes read from r so far
}

func newChunker(r io.Reader, sm *specialMatcher, size int) *chunker {
	if size <= 0 {
		size = defaultChunkSize
	}
	return &chunker{r: r, sm: sm, size: size}
}

// next returns the next chunk, never empty, or io.EOF after the last one.
// The chunk is the caller's: the chunker does not touch it again.
func (c *chunker) next() ([]byte, error) {
	want := c.size
	for {
		for !c.eof && len(c.buf) < want {
			if cap(c.buf) < want {
				nb := make([]byte, len(c.buf), want+want/4)
				copy(nb, c.buf)
				c.buf = nb
			}
			n, err := c.r.Read(c.buf[len(c.buf):want])
			c.buf = c.buf[:len(c.buf)+n]
			c.read += int64(n)
			if errors.Is(err, io.EOF) {
				c.eof = true
			} else if err != nil {
				return nil, fmt.Errorf("read input: %w", err)
			}
		}
		if c.eof {
			if len(c.buf) == 0 {
				return nil, io.EOF
			}
			out := c.buf
			c.buf = nil
			return out, nil
		}
		cut := safeCut(c.buf, c.sm)
		if cut == 0 {
			want *= 2 // no boundary yet (e.g. one very long word): read more
			continue
		}
		out := c.buf[:cut:cut]
		rest := make([]byte, len(c.buf)-cut, max(c.size, len(c.buf)-cut)+c.size/4)
		copy(rest, c.buf[cut:])
		c.buf = rest
		return out, nil
	}
}
