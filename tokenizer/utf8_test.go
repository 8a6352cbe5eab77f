package tokenizer

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUTF8Writer: after every write, exactly the complete characters so far
// have been passed on; invalid bytes become U+FFFD; Close flushes an
// incomplete tail, one U+FFFD a byte.
func TestUTF8Writer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		after  []string // output after each write
		final  string   // output after Close
	}{
		{"ascii", []string{"ab", "c"}, []string{"ab", "abc"}, "abc"},
		{"split 2-byte", []string{"h\xc3", "\xa9llo"}, []string{"h", "héllo"}, "héllo"},
		{"split 4-byte", []string{"\xf0", "\x9f", "\x98", "\x80!"}, []string{"", "", "", "😀!"}, "😀!"},
		{"whole then split", []string{"€\xe2\x82", "\xac"}, []string{"€", "€€"}, "€€"},
		{"invalid byte", []string{"a\xffb"}, []string{"a\uFFFDb"}, "a\uFFFDb"},
		{"two invalid bytes", []string{"\xff\xfe"}, []string{"\uFFFD\uFFFD"}, "\uFFFD\uFFFD"},
		{"stray continuation", []string{"\x80a"}, []string{"\uFFFDa"}, "\uFFFDa"},
		{"broken sequence", []string{"\xe2", "A"}, []string{"", "\uFFFDA"}, "\uFFFDA"},
		{"surrogate", []string{"\xed\xa0\x80"}, []string{"\uFFFD\uFFFD\uFFFD"}, "\uFFFD\uFFFD\uFFFD"},
		{"incomplete at end", []string{"ab\xe2\x82"}, []string{"ab"}, "ab\uFFFD\uFFFD"},
		{"incomplete then invalid", []string{"\xe2\x98", "\xff"}, []string{"", "\uFFFD\uFFFD\uFFFD"}, "\uFFFD\uFFFD\uFFFD"},
		{"real U+FFFD", []string{"\xef\xbf", "\xbd"}, []string{"", "\uFFFD"}, "\uFFFD"},
		{"newline kept", []string{"a\n"}, []string{"a\n"}, "a\n"},
		{"nothing", nil, nil, ""},
	} {
		var buf bytes.Buffer
		w := NewUTF8Writer(&buf)
		for i, s := range tc.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
			if buf.String() != tc.after[i] {
				t.Errorf("%s: after write %d: %q, want %q", tc.name, i, buf.String(), tc.after[i])
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.final || !utf8.Valid(buf.Bytes()) {
			t.Errorf("%s: final %q, want %q", tc.name, buf.String(), tc.final)
		}
	}
}

// TestUTF8WriterSplits: however a byte string is cut into writes, the text
// is string([]rune(input)), and after every write the output so far is
// valid UTF-8 and a prefix of it.
func TestUTF8WriterSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", " ", "é", "€", "😀", "\n", "\xff", "\x80", "\xe2\x82", "\xf0\x9f", "\xed\xa0\x80", "\uFFFD"}
	for range 500 {
		var in []byte
		for range rng.IntN(20) {
			in = append(in, pieces[rng.IntN(len(pieces))]...)
		}
		want := string([]rune(string(in)))
		var out bytes.Buffer
		w := NewUTF8Writer(&out)
		for rest := in; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			w.Write(rest[:n])
			rest = rest[n:]
			if !utf8.Valid(out.Bytes()) || !strings.HasPrefix(want, out.String()) {
				t.Fatalf("input %q: after a write %q, not valid or not a prefix of %q", in, out.String(), want)
			}
		}
		w.Close()
		if out.String() != want {
			t.Fatalf("input %q: wrote %q, want %q", in, out.String(), want)
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(b []byte) (int, error) { return 0, f.err }

func TestUTF8WriterErrors(t *testing.T) {
	boom := errors.New("boom")
	w := NewUTF8Writer(failWriter{boom})
	if n, err := w.Write([]byte("ab\xe2")); n != 3 || !errors.Is(err, boom) {
		t.Errorf("Write = %d, %v; want 3, boom", n, err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v; want boom (the held-back byte)", err)
	}
	if err := NewUTF8Writer(failWriter{boom}).Close(); err != nil {
		t.Errorf("Close with nothing held back = %v", err)
	}
}
