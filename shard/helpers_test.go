package shard

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// writeShard writes tokens as an llm.c shard named name in dir and returns its path.
func writeShard(t testing.TB, dir, name string, tokens []uint16) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := WriteFile(p, tokens); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeBytes writes b to dir/name and returns its path.
func writeBytes(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawHeader builds a shard file by hand: header fields, then tokens.
func rawHeader(magic, version, count int32, tokens []uint16) []byte {
	b := make([]byte, HeaderSize, HeaderSize+2*len(tokens))
	binary.LittleEndian.PutUint32(b[0:], uint32(magic))
	binary.LittleEndian.PutUint32(b[4:], uint32(version))
	binary.LittleEndian.PutUint32(b[8:], uint32(count))
	for _, t := range tokens {
		b = binary.LittleEndian.AppendUint16(b, t)
	}
	return b
}

func rawTokens(tokens []uint16) []byte {
	var b []byte
	for _, t := range tokens {
		b = binary.LittleEndian.AppendUint16(b, t)
	}
	return b
}

func seq(start, n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = uint16(start + i)
	}
	return s
}
