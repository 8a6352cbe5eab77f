package shard

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	big := make([]uint16, 200_003) // several writer chunks
	for i := range big {
		big[i] = uint16(i * 7919)
	}
	tests := []struct {
		name   string
		tokens []uint16
	}{
		{"empty", nil},
		{"one", []uint16{42}},
		{"extremes", []uint16{0, 65535, 1, 65534}},
		{"big", big},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeShard(t, dir, tc.name+".bin", tc.tokens)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Byte-exact against a hand-built file.
			if want := rawHeader(Magic, Version, int32(len(tc.tokens)), tc.tokens); !bytes.Equal(b, want) {
				t.Fatalf("file bytes differ from the llm.c layout (len %d, want %d)", len(b), len(want))
			}
			s, err := Open(p, MaxVocab)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := s.Tokens()
			if len(got) != len(tc.tokens) || s.Len() != len(tc.tokens) {
				t.Fatalf("len %d, want %d", len(got), len(tc.tokens))
			}
			for i := range got {
				if got[i] != tc.tokens[i] {
					t.Fatalf("token %d = %d, want %d", i, got[i], tc.tokens[i])
				}
			}
			if s.Path() != p || s.Format() != FormatLLMC {
				t.Fatalf("path %q format %v", s.Path(), s.Format())
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestRawFormat(t *testing.T) {
	dir := t.TempDir()
	tok := []uint16{5, 0, 65535, 9}
	p := writeBytes(t, dir, "raw.bin", rawTokens(tok))
	s, err := Open(p, MaxVocab, WithFormat(FormatRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Tokens(); len(got) != 4 || got[2] != 65535 || got[3] != 9 {
		t.Fatalf("raw tokens %v", got)
	}
	// Without the opt-in the same file is rejected, never guessed.
	if _, err := Open(p, MaxVocab); err == nil {
		t.Fatal("raw file opened as llm.c without an error")
	}
	// OpenGlob passes the option through.
	ds, err := OpenGlob(filepath.Join(dir, "raw*.bin"), MaxVocab, 2, WithFormat(FormatRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.NumSequences() != 1 {
		t.Fatalf("NumSequences %d, want 1", ds.NumSequences())
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		ok   bool
	}{{"", FormatLLMC, true}, {"llmc", FormatLLMC, true}, {"raw", FormatRaw, true}, {"nanogpt", FormatRaw, true}, {"npy", 0, false}} {
		got, err := ParseFormat(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseFormat(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want Order
		ok   bool
	}{{"", Sequential, true}, {"sequential", Sequential, true}, {"shuffled", Shuffled, true}, {"random", 0, false}} {
		got, err := ParseOrder(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseOrder(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in && tc.in != "" {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	late := make([]uint16, 9000)
	late[5000] = 300 // past the first scan block
	tests := []struct {
		name  string
		data  []byte
		opts  []Option
		vocab int
		want  error
		inMsg []string // substrings the message must contain besides the path
	}{
		{"bad magic", rawHeader(12345, 1, 2, []uint16{1, 2}), nil, 100, ErrBadMagic, []string{"12345", "20240520", "data.format: raw"}},
		{"bad version", rawHeader(Magic, 7, 2, []uint16{1, 2}), nil, 100, ErrBadVersion, []string{"7"}},
		{"size short", rawHeader(Magic, 1, 3, []uint16{1, 2}), nil, 100, ErrSize, []string{"1028 bytes", "3 tokens", "1030"}},
		{"size long", rawHeader(Magic, 1, 1, []uint16{1, 2}), nil, 100, ErrSize, []string{"1028 bytes", "1 tokens"}},
		{"negative count", rawHeader(Magic, 1, -2, nil), nil, 100, ErrSize, []string{"-2"}},
		{"truncated header", make([]byte, 100), nil, 100, ErrSize, []string{"100 bytes"}},
		{"empty file", nil, nil, 100, ErrSize, []string{"0 bytes"}},
		{"token out of vocab", rawHeader(Magic, 1, 5, []uint16{0, 1, 2, 99, 3}), nil, 50, ErrTokenRange, []string{"token 99", "position 3", "size 50"}},
		{"token out of vocab late", rawHeader(Magic, 1, 9000, late), nil, 256, ErrTokenRange, []string{"token 300", "position 5000"}},
		{"token equal vocab", rawHeader(Magic, 1, 2, []uint16{0, 50}), nil, 50, ErrTokenRange, []string{"token 50", "position 1"}},
		{"vocab zero", rawHeader(Magic, 1, 0, nil), nil, 0, ErrVocabSize, []string{"0"}},
		{"vocab too big", rawHeader(Magic, 1, 0, nil), nil, 65537, ErrVocabSize, []string{"65537"}},
		{"raw odd size", []byte{1, 2, 3}, []Option{WithFormat(FormatRaw)}, 100, ErrSize, []string{"3 bytes"}},
		{"raw token out of vocab", rawTokens([]uint16{1, 2, 200}), []Option{WithFormat(FormatRaw)}, 100, ErrTokenRange, []string{"position 2"}},
		{"raw but has header", rawHeader(Magic, 1, 1, []uint16{1}), []Option{WithFormat(FormatRaw)}, MaxVocab, ErrFormat, []string{"llm.c header"}},
		{"unknown format", rawHeader(Magic, 1, 1, []uint16{1}), []Option{WithFormat(Format(9))}, 100, ErrFormat, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeBytes(t, dir, "f"+string(rune('a'+i))+".bin", tc.data)
			s, err := Open(p, tc.vocab, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			msg := err.Error()
			for _, sub := range append([]string{p}, tc.inMsg...) {
				if !strings.Contains(msg, sub) {
					t.Errorf("error %q does not contain %q", msg, sub)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "nope.bin")
		_, err := Open(p, 100)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Open(dir, 100)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.bin")
	w, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]uint16{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteInts([]int{3, 4, 5}, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("final name exists before Close: %v", err)
	}
	if w.Count() != 5 || w.Path() != p {
		t.Fatalf("Count %d Path %q", w.Count(), w.Path())
	}
	if err := w.WriteInts([]int{1, 10}, 10); !errors.Is(err, ErrTokenRange) || !strings.Contains(err.Error(), "position 6") {
		t.Fatalf("WriteInts out of range: %v", err)
	}
	if err := w.WriteInts([]int{-1}, 10); !errors.Is(err, ErrTokenRange) {
		t.Fatalf("WriteInts negative: %v", err)
	}
	if err := w.WriteInts(nil, MaxVocab+1); !errors.Is(err, ErrVocabSize) {
		t.Fatalf("WriteInts vocab: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Write([]uint16{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	w.Abort() // no effect after Close
	s, err := Open(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The failed WriteInts calls wrote nothing.
	want := []uint16{1, 2, 3, 4, 5}
	if got := s.Tokens(); !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}

	// Abort leaves nothing behind.
	q := filepath.Join(dir, "aborted.bin")
	w2, err := Create(q)
	if err != nil {
		t.Fatal(err)
	}
	w2.Write([]uint16{1, 2, 3})
	w2.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "w.bin" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only w.bin", names)
	}
	if _, err := Create(filepath.Join(dir, "missing", "x.bin")); err == nil {
		t.Fatal("Create in a missing directory succeeded")
	}
}

func TestWriterTooMany(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "x.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	w.n = MaxTokens - 1 // pretend; writing 2 more must fail without writing
	if err := w.Write([]uint16{1, 2}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("error %v, want ErrTooMany", err)
	}
}
