package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The llm.c shard format: a header of HeaderInts little-endian int32 values
// ([0] Magic, [1] Version, [2] token count, the rest 0) followed by the
// tokens as little-endian uint16.
const (
	Magic      = 20240520
	Version    = 1
	HeaderInts = 256
	HeaderSize = HeaderInts * 4 // bytes

	// MaxVocab is the largest vocabulary a uint16 shard can hold.
	MaxVocab = 1 << 16
	// MaxTokens is the largest token count the int32 header can record.
	MaxTokens = math.MaxInt32
)

// Format selects how a file is read.
type Format int

const (
	// FormatLLMC is the llm.c shard format with its 1024-byte header (the default).
	FormatLLMC Format = iota
	// FormatRaw is a raw nanoGPT .bin: little-endian uint16 tokens, no header.
	// It is never guessed, only used when asked for.
	FormatRaw
)

func (f Format) String() string {
	switch f {
	case FormatLLMC:
		return "llmc"
	case FormatRaw:
		return "raw"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "llmc" (or "") and "raw".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "llmc":
		return FormatLLMC, nil
	case "raw", "nanogpt":
		return FormatRaw, nil
	}
	return 0, fmt.Errorf("%w: %q (want llmc or raw)", ErrFormat, s)
}

// Errors returned (wrapped, with the file name and the offending value) by
// Open, OpenGlob and the Writer. Test with errors.Is.
var (
	ErrBadMagic   = errors.New("bad shard magic")
	ErrBadVersion = errors.New("unsupported shard version")
	ErrSize       = errors.New("shard size does not match its header")
	ErrTokenRange = errors.New("token id out of vocabulary")
	ErrTooShort   = errors.New("shard shorter than one sequence")
	ErrNoFiles    = errors.New("no shard files match")
	ErrFormat     = errors.New("unknown shard format")
	ErrVocabSize  = errors.New("vocabulary size out of range")
	ErrTooMany    = errors.New("too many tokens for one shard")
	ErrClosed     = errors.New("shard writer closed")
)

// header returns the 1024-byte llm.c header for n tokens.
func header(n int64) []byte {
	h := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint32(h[0:], Magic)
	binary.LittleEndian.PutUint32(h[4:], Version)
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	return h
}

// checkHeader validates an llm.c header against the file size and returns
// the token count.
func checkHeader(path string, h []byte, size int64) (int64, error) {
	if len(h) < HeaderSize || size < HeaderSize {
		return 0, fmt.Errorf("shard %s: %w: file is %d bytes, shorter than the %d-byte header", path, ErrSize, size, HeaderSize)
	}
	magic := int32(binary.LittleEndian.Uint32(h[0:]))
	version := int32(binary.LittleEndian.Uint32(h[4:]))
	n := int64(int32(binary.LittleEndian.Uint32(h[8:])))
	if magic != Magic {
		return 0, fmt.Errorf("shard %s: %w: %d (want %d); if it is a raw nanoGPT .bin (uint16 tokens, no header), "+
			"read it with format raw: data.format: raw in the job, --format raw for eval", path, ErrBadMagic, magic, Magic)
	}
	if version != Version {
		return 0, fmt.Errorf("shard %s: %w: %d (want %d)", path, ErrBadVersion, version, Version)
	}
	if n < 0 {
		return 0, fmt.Errorf("shard %s: %w: negative token count %d", path, ErrSize, n)
	}
	if want := HeaderSize + 2*n; size != want {
		return 0, fmt.Errorf("shard %s: %w: file is %d bytes, header says %d tokens (want %d bytes)", path, ErrSize, size, n, want)
	}
	return n, nil
}

// littleEndian reports whether the machine stores uint16 little-endian, in
// which case the token region of a mapped file is used in place.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
