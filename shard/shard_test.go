package shard

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripQuick(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.bin")
	tok := []uint16{1, 2, 3, 65535, 0}
	if err := WriteFile(p, tok); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, MaxVocab)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Tokens(); len(got) != len(tok) || got[3] != 65535 {
		t.Fatalf("got %v", got)
	}
	st, _ := os.Stat(p)
	if st.Size() != 1024+10 {
		t.Fatal(st.Size())
	}
	if _, err := Open(p, 100); !errors.Is(err, ErrTokenRange) {
		t.Fatal(err)
	}
}
