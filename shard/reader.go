package shard

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/edsrzf/mmap-go"
)

// Shard is one token file opened read-only with mmap. Its Tokens are a
// zero-copy view of the mapping on little-endian machines; they become
// invalid after Close.
type Shard struct {
	path   string
	format Format
	m      mmap.MMap // nil when the file holds no token bytes or was copied
	tokens []uint16
}

// Option configures Open and OpenGlob.
type Option func(*options)

type options struct {
	format Format
}

// WithFormat selects the file format (default FormatLLMC). FormatRaw reads
// headerless nanoGPT .bin files.
func WithFormat(f Format) Option { return func(o *options) { o.format = f } }

// Open maps one shard and validates it: the header (magic, version, size
// against the token count) for FormatLLMC, an even size for FormatRaw, and
// that every token id is below vocabSize (1..MaxVocab; pass MaxVocab to
// accept every uint16). Errors name the file and the offending value.
func Open(path string, vocabSize int, opts ...Option) (*Shard, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if vocabSize < 1 || vocabSize > MaxVocab {
		return nil, fmt.Errorf("shard %s: %w: %d (want 1..%d)", path, ErrVocabSize, vocabSize, MaxVocab)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open shard: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open shard: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("shard %s: not a regular file", path)
	}
	size := st.Size()

	var off, n int64
	switch o.format {
	case FormatLLMC:
		h := make([]byte, HeaderSize)
		if size >= HeaderSize {
			if _, err := io.ReadFull(f, h); err != nil {
				return nil, fmt.Errorf("shard %s: read header: %w", path, err)
			}
		}
		if n, err = checkHeader(path, h, size); err != nil {
			return nil, err
		}
		off = HeaderSize
	case FormatRaw:
		if size%2 != 0 {
			return nil, fmt.Errorf("shard %s: %w: raw file is %d bytes, an odd size for uint16 tokens", path, ErrSize, size)
		}
		if size >= 12 {
			h := make([]byte, 12)
			if _, err := io.ReadFull(f, h); err != nil {
				return nil, fmt.Errorf("shard %s: read: %w", path, err)
			}
			if binary.LittleEndian.Uint32(h[0:]) == Magic && binary.LittleEndian.Uint32(h[4:]) == Version {
				return nil, fmt.Errorf("shard %s: %w: raw format requested but the file has an llm.c header (magic %d); open it as llmc", path, ErrFormat, Magic)
			}
		}
		n = size / 2
	default:
		return nil, fmt.Errorf("shard %s: %w: %v", path, ErrFormat, o.format)
	}

	s := &Shard{path: path, format: o.format}
	if n > 0 {
		if littleEndian {
			// Map the whole file (offsets must be page aligned) and view
			// the token region in place; the offset 1024 keeps uint16 alignment.
			m, err := mmap.Map(f, mmap.RDONLY, 0)
			if err != nil {
				return nil, fmt.Errorf("shard %s: mmap: %w", path, err)
			}
			s.m = m
			if int64(len(m)) < off+2*n { // changed since Stat
				s.Close()
				return nil, fmt.Errorf("shard %s: %w: file shrank to %d bytes while opening", path, ErrSize, len(m))
			}
			s.tokens = unsafe.Slice((*uint16)(unsafe.Pointer(&m[off])), n)
		} else {
			buf := make([]byte, 2*n)
			if _, err := f.ReadAt(buf, off); err != nil {
				return nil, fmt.Errorf("shard %s: read: %w", path, err)
			}
			s.tokens = make([]uint16, n)
			for i := range s.tokens {
				s.tokens[i] = binary.LittleEndian.Uint16(buf[2*i:])
			}
		}
	}
	if pos, id := firstAtLeast(s.tokens, vocabSize); pos >= 0 {
		s.Close()
		return nil, fmt.Errorf("shard %s: %w: token %d at position %d (vocabulary size %d)", path, ErrTokenRange, id, pos, vocabSize)
	}
	return s, nil
}

// firstAtLeast returns the position and value of the first token ≥ limit,
// or -1. Blocks of 4096 tokens are tested four tokens at a time (anyAtLeast)
// and only a block that holds an offender is searched one by one.
func firstAtLeast(tok []uint16, limit int) (int, int) {
	if limit >= MaxVocab {
		return -1, 0
	}
	const block = 4096
	for b := 0; b < len(tok); b += block {
		blk := tok[b:min(b+block, len(tok))]
		if !anyAtLeast(blk, limit) {
			continue
		}
		for i, t := range blk {
			if int(t) >= limit {
				return b + i, int(t)
			}
		}
	}
	return -1, 0
}

// SWAR constants for four 16-bit lanes of a uint64.
const (
	lanes1  = 0x0001_0001_0001_0001
	lanesHi = 0x8000 * lanes1 // bit 15 of each lane
	lanesLo = 0x7FFF * lanes1 // bits 0..14 of each lane
)

// anyAtLeast reports whether some token of tok is ≥ limit (1 ≤ limit <
// MaxVocab), testing four lanes per uint64 without carries between lanes:
// with n = limit−1 and lo = lane & 0x7FFF, lo + (0x7FFF − n') ≤ 0xFFFE has
// bit 15 set exactly when lo > n'. For n < 0x8000 a lane exceeds n when that
// bit or its own bit 15 is set (n' = n); otherwise when both are set
// (n' = n − 0x8000).
func anyAtLeast(tok []uint16, limit int) bool {
	n := uint64(limit - 1)
	i := 0
	if len(tok) >= 4 && uintptr(unsafe.Pointer(&tok[0]))%8 == 0 {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&tok[0])), len(tok)/4)
		var acc uint64
		if n < 0x8000 {
			add := (0x7FFF - n) * lanes1
			for _, w := range words {
				acc |= ((w & lanesLo) + add) | w
			}
		} else {
			add := (0x7FFF - (n - 0x8000)) * lanes1
			for _, w := range words {
				acc |= ((w & lanesLo) + add) & w
			}
		}
		if acc&lanesHi != 0 {
			return true
		}
		i = len(words) * 4
	}
	for _, t := range tok[i:] {
		if int(t) >= limit {
			return true
		}
	}
	return false
}

// Path returns the file name the shard was opened from.
func (s *Shard) Path() string { return s.path }

// Format returns the format the shard was read with.
func (s *Shard) Format() Format { return s.format }

// Len returns the number of tokens.
func (s *Shard) Len() int { return len(s.tokens) }

// Tokens returns the tokens, a read-only view valid until Close.
func (s *Shard) Tokens() []uint16 { return s.tokens }

// Close unmaps the file. It is idempotent.
func (s *Shard) Close() error {
	s.tokens = nil
	if s.m == nil {
		return nil
	}
	err := s.m.Unmap()
	s.m = nil
	if err != nil {
		return fmt.Errorf("shard %s: unmap: %w", s.path, err)
	}
	return nil
}
