package shard

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestSplitSizes(t *testing.T) {
	tests := []struct {
		n, max int64
		want   []int64
	}{
		{0, 10, nil},
		{5, 10, []int64{5}},
		{10, 10, []int64{10}},
		{11, 10, []int64{6, 5}},
		{23, 10, []int64{8, 8, 7}},
		{30, 10, []int64{10, 10, 10}},
		{100_000_003, 100_000_000, []int64{50_000_002, 50_000_001}},
	}
	for _, tc := range tests {
		if got := SplitSizes(tc.n, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("SplitSizes(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
		}
	}
}

func TestWriteSharded(t *testing.T) {
	dir := t.TempDir()
	tok := seq(0, 23)
	var progress []int64
	paths, err := WriteSharded(dir, "train", tok, 10, func(n int64) { progress = append(progress, n) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "train_000000.bin"), filepath.Join(dir, "train_000001.bin"), filepath.Join(dir, "train_000002.bin")}
	if !slices.Equal(paths, want) || !slices.Equal(progress, []int64{8, 16, 23}) {
		t.Fatalf("paths %v progress %v", paths, progress)
	}
	var all []uint16
	for _, p := range paths {
		s, err := Open(p, 100)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s.Tokens()...)
		s.Close()
	}
	if !slices.Equal(all, tok) {
		t.Fatalf("concatenated shards %v, want %v", all, tok)
	}
	if _, err := WriteSharded(dir, "x", tok, 0, nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("maxPerShard 0: %v", err)
	}
}

func TestRawWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens.raw")
	w, err := Create(p, WithFormat(FormatRaw))
	if err != nil {
		t.Fatal(err)
	}
	w.n = MaxTokens // raw files have no header limit
	if err := w.Write([]uint16{7, 8, 9}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, 10, WithFormat(FormatRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Equal(s.Tokens(), []uint16{7, 8, 9}) {
		t.Fatalf("raw tokens %v", s.Tokens())
	}
	if _, err := Create(p, WithFormat(Format(5))); !errors.Is(err, ErrFormat) {
		t.Fatalf("unknown format: %v", err)
	}
}
