package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// streamTexts are inputs where chunk boundaries are tricky: special tokens
// across reads, whitespace runs, long words without boundaries, invalid UTF-8.
func streamTexts(t *testing.T) map[string][]byte {
	t.Helper()
	shakespeare, err := os.ReadFile(shakespearePath)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRand(7)
	var mixed bytes.Buffer
	for range 3000 {
		switch r.IntN(6) {
		case 0:
			mixed.WriteString(EndOfText)
		case 1:
			mixed.WriteString(strings.Repeat(" ", r.IntN(5)) + strings.Repeat("\n", r.IntN(3)))
		case 2:
			mixed.Write([]byte{0xff, 0xe6, 0x97}) // invalid and truncated UTF-8
		default:
			mixed.WriteString(randomText(r, 1+r.IntN(20)))
		}
	}
	return map[string][]byte{
		"shakespeare-prefix": shakespeare[:60_000],
		"mixed":              mixed.Bytes(),
		"long-word":          bytes.Repeat([]byte("abcdefghij"), 3000),
		"spaces":             []byte(strings.Repeat("a    \n\n  ", 2000)),
		"specials":           []byte(strings.Repeat(EndOfText+"x"+EndOfText+EndOfText+" ", 500)),
		"empty":              nil,
	}
}

func TestEncodeStreamEqualsEncode(t *testing.T) {
	base := loadGPT2(t)
	for name, text := range streamTexts(t) {
		want := base.EncodeBytes(text)
		for _, chunk := range []int{16, 100, 4096, 0} {
			tok := *base // a copy with another chunk size
			tok.chunkSize = chunk
			for _, reader := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.HalfReader,
			} {
				var got []int
				err := tok.EncodeStream(reader(bytes.NewReader(text)), func(ids []int) error {
					got = append(got, ids...)
					return nil
				})
				if err != nil {
					t.Fatalf("%s chunk %d: %v", name, chunk, err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s chunk %d: stream gives %d ids, Encode %d (first difference at %d)",
						name, chunk, len(got), len(want), firstDiff(got, want))
				}
			}
		}
	}
}

func firstDiff(a, b []int) int {
	for k := range min(len(a), len(b)) {
		if a[k] != b[k] {
			return k
		}
	}
	return min(len(a), len(b))
}

func TestEncodeStreamErrors(t *testing.T) {
	tok := loadGPT2(t)
	stop := errors.New("stop")
	calls := 0
	small := *tok
	small.chunkSize = 64
	text := bytes.Repeat([]byte("some words here "), 1000)
	err := small.EncodeStream(bytes.NewReader(text), func([]int) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("fn error: got %v after %d calls, want %v after 3", err, calls, stop)
	}
	boom := errors.New("disk on fire")
	err = small.EncodeStream(io.MultiReader(bytes.NewReader(text), iotest.ErrReader(boom)), func([]int) error { return nil })
	if !errors.Is(err, boom) {
		t.Errorf("reader error: got %v, want %v", err, boom)
	}
}

func TestCountPreTokensChunkInvariant(t *testing.T) {
	for name, text := range streamTexts(t) {
		want := Counts{}
		sm := newSpecialMatcher([]string{EndOfText})
		c := newCounter()
		c.addText(text, sm)
		c.addTo(want)
		for _, chunk := range []int{16, 333, 1 << 16} {
			for _, workers := range []int{1, 3} {
				got := Counts{}
				err := CountPreTokens(iotest.HalfReader(bytes.NewReader(text)), got,
					CountOptions{Special: []string{EndOfText}, Workers: workers, ChunkSize: chunk})
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, want) {
					t.Fatalf("%s chunk %d workers %d: counts differ from one-piece counting", name, chunk, workers)
				}
			}
		}
		if _, ok := want[EndOfText]; ok {
			t.Errorf("%s: the special token was counted", name)
		}
	}
}

// Chunks stay within the chunk size when the text has boundaries, and grow
// only as needed when it has none.
func TestChunkerBounded(t *testing.T) {
	texts := streamTexts(t)
	for _, tc := range []struct {
		name    string
		size    int
		maxSeen int
	}{
		{"shakespeare-prefix", 1000, 1000},
		{"mixed", 512, 512},
		{"specials", 100, 100},
		{"long-word", 1000, 30000},
	} {
		ch := newChunker(bytes.NewReader(texts[tc.name]), newSpecialMatcher([]string{EndOfText}), tc.size)
		var all []byte
		for {
			b, err := ch.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 || len(b) > tc.maxSeen {
				t.Errorf("%s: chunk of %d bytes (size %d)", tc.name, len(b), tc.size)
			}
			all = append(all, b...)
		}
		if !bytes.Equal(all, texts[tc.name]) {
			t.Errorf("%s: chunks do not add up to the text", tc.name)
		}
	}
}

func TestEncodeConcurrent(t *testing.T) {
	tok := loadGPT2(t)
	texts := streamTexts(t)
	want := map[string][]int{}
	for name, text := range texts {
		want[name] = tok.EncodeBytes(text)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(texts))
	for g := range 4 {
		wg.Go(func() {
			for name, text := range texts {
				if got := tok.EncodeBytes(text); !slices.Equal(got, want[name]) {
					errs <- fmt.Sprintf("goroutine %d, %s: ids differ", g, name)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
