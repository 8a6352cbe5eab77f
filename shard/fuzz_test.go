package shard

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes arbitrary bytes to a file and opens it in both formats:
// it must never panic, and either open cleanly with tokens consistent with
// the file, or return an error. The seed corpus runs in every `go test`.
func FuzzOpen(f *testing.F) {
	f.Add(rawHeader(Magic, Version, 3, []uint16{1, 2, 3}))
	f.Add(rawHeader(Magic, Version, 0, nil))
	f.Add(rawHeader(Magic, Version, 5, []uint16{1, 2, 3}))
	f.Add(rawHeader(Magic, Version, -1, nil))
	f.Add(rawHeader(Magic, 2, 1, []uint16{1}))
	f.Add(rawHeader(1, Version, 1, []uint16{1}))
	f.Add(rawHeader(Magic, Version, 2, []uint16{60000, 1}))
	f.Add(rawHeader(Magic, Version, 6, []uint16{0, 1, 2, 3, 4, 5}))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 2, 3, 4})
	f.Add(make([]byte, 1023))
	f.Add(make([]byte, 1025))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		const vocab = 50257
		for _, format := range []Format{FormatLLMC, FormatRaw} {
			s, err := Open(p, vocab, WithFormat(format))
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				continue
			}
			want := len(data) / 2
			if format == FormatLLMC {
				want = (len(data) - HeaderSize) / 2
			}
			if s.Len() != want {
				t.Fatalf("%v: %d tokens from %d bytes, want %d", format, s.Len(), len(data), want)
			}
			for i, tok := range s.Tokens() {
				if int(tok) >= vocab {
					t.Fatalf("%v: token %d at %d passed the vocabulary check", format, tok, i)
				}
			}
			s.Close()
			ds, err := OpenGlob(p, vocab, 4, WithFormat(format))
			if err != nil {
				if !errors.Is(err, ErrTooShort) {
					t.Fatalf("%v: Open succeeded but OpenGlob failed: %v", format, err)
				}
				continue
			}
			x, y := make([]int32, 4), make([]int32, 4)
			for i := range ds.NumSequences() + 1 {
				ds.Sequence(i, x, y)
			}
			ds.Close()
		}
	})
}
