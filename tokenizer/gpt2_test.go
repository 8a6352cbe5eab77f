package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

const gpt2Dir = "testdata/gpt2"

// shakespearePath is the repository's copy of tiny Shakespeare (not duplicated in testdata).
const shakespearePath = "../data/tinyshakespeare.txt"

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
	gpt2Err  error
)

// loadGPT2 returns the GPT-2 tokenizer with <|endoftext|> as special token.
func loadGPT2(t testing.TB) *Tokenizer {
	t.Helper()
	gpt2Once.Do(func() { gpt2Tok, gpt2Err = Load(gpt2Dir) })
	if gpt2Err != nil {
		t.Fatal(gpt2Err)
	}
	return gpt2Tok
}

// gpt2Ref is an independent reference encoder built straight from the files:
// its own byte decoder (GPT-2's bytes_to_unicode, written out again), the
// regexp2 engine for the pattern, and two BPE variants on strings:
// merges applies merges by rank like GPT-2's encoder.py; tiktoken ranks
// adjacent parts by the id of their concatenation and takes a whole piece
// that is a token as is, like tiktoken.
type gpt2Ref struct {
	ids   map[string]int    // raw token bytes → id
	ranks map[[2]string]int // merge → rank
}

var (
	refOnce sync.Once
	refTok  *gpt2Ref
)

func loadGPT2Ref(t testing.TB) *gpt2Ref {
	t.Helper()
	refOnce.Do(func() {
		dec := map[rune]byte{}
		n := 0
		for b := range 256 {
			if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) {
				dec[rune(b)] = byte(b)
			} else {
				dec[rune(256+n)] = byte(b)
				n++
			}
		}
		raw := func(s string) string {
			var b []byte
			for _, r := range s {
				b = append(b, dec[r])
			}
			return string(b)
		}
		data, err := os.ReadFile(gpt2Dir + "/vocab.json")
		if err != nil {
			panic(err)
		}
		var v map[string]int
		if err := json.Unmarshal(data, &v); err != nil {
			panic(err)
		}
		r := &gpt2Ref{ids: map[string]int{}, ranks: map[[2]string]int{}}
		for k, id := range v {
			r.ids[raw(k)] = id
		}
		data, err = os.ReadFile(gpt2Dir + "/merges.txt")
		if err != nil {
			panic(err)
		}
		for k, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(line)
			r.ranks[[2]string{raw(f[0]), raw(f[1])}] = k
		}
		refTok = r
	})
	return refTok
}

func (r *gpt2Ref) bpeMerges(piece string) []int {
	word := make([]string, len(piece))
	for i := range len(piece) {
		word[i] = piece[i : i+1]
	}
	for len(word) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(word); i++ {
			if rk, ok := r.ranks[[2]string{word[i], word[i+1]}]; ok && (best < 0 || rk < best) {
				best, at = rk, i
			}
		}
		if at < 0 {
			break
		}
		first, second := word[at], word[at+1]
		var next []string
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				next = append(next, first+second)
				i += 2
			} else {
				next = append(next, word[i])
				i++
			}
		}
		word = next
	}
	ids := make([]int, len(word))
	for k, w := range word {
		ids[k] = r.ids[w]
	}
	return ids
}

func (r *gpt2Ref) bpeTiktoken(piece string) []int {
	if id, ok := r.ids[piece]; ok {
		return []int{id}
	}
	parts := make([]string, len(piece))
	for i := range len(piece) {
		parts[i] = piece[i : i+1]
	}
	for len(parts) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(parts); i++ {
			if id, ok := r.ids[parts[i]+parts[i+1]]; ok && (best < 0 || id < best) {
				best, at = id, i
			}
		}
		if at < 0 {
			break
		}
		parts = slices.Replace(parts, at, at+2, parts[at]+parts[at+1])
	}
	ids := make([]int, len(parts))
	for k, p := range parts {
		ids[k] = r.ids[p]
	}
	return ids
}

// encode splits at <|endoftext|> (when special) and pre-tokenizes with regexp2.
func (r *gpt2Ref) encode(t testing.TB, text string, special bool, tiktoken bool) []int {
	var segs []string
	if special {
		segs = strings.SplitAfter(text, EndOfText)
	} else {
		segs = []string{text}
	}
	var ids []int
	for _, seg := range segs {
		body, isSpecial := strings.CutSuffix(seg, EndOfText)
		if !special {
			body, isSpecial = seg, false
		}
		for _, p := range refPreTokenize(t, body) {
			if tiktoken {
				ids = append(ids, r.bpeTiktoken(p)...)
			} else {
				ids = append(ids, r.bpeMerges(p)...)
			}
		}
		if isSpecial {
			ids = append(ids, 50256)
		}
	}
	return ids
}

func TestGPT2KnownIDs(t *testing.T) {
	tok := loadGPT2(t)
	plain, err := LoadFiles(gpt2Dir+"/vocab.json", gpt2Dir+"/merges.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tok  *Tokenizer
		in   string
		want []int
	}{
		{tok, "Hello, world!", []int{15496, 11, 995, 0}},
		{tok, "hello world", []int{31373, 995}},
		{tok, "<|endoftext|>", []int{50256}},
		{tok, "<|endoftext|>\n\n", []int{50256, 628}},
		{tok, "<|endoftext|>\n\ntesting!", []int{50256, 198, 198, 33407, 0}},
		{tok, "Hello<|endoftext|> how", []int{15496, 50256, 703}},
		{tok, "", nil},
		{plain, "<|endoftext|>", []int{27, 91, 437, 1659, 5239, 91, 29}}, // not special: plain text
	}
	for _, tc := range tests {
		if got := tc.tok.Encode(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if tok.VocabSize() != 50257 {
		t.Errorf("VocabSize = %d, want 50257", tok.VocabSize())
	}
	if id, ok := tok.SpecialID(EndOfText); !ok || id != 50256 {
		t.Errorf("SpecialID(%q) = %d, %v; want 50256", EndOfText, id, ok)
	}
}

func TestGPT2MatchesReference(t *testing.T) {
	tok := loadGPT2(t)
	ref := loadGPT2Ref(t)
	files := []string{"testdata/address.txt", "testdata/german.txt", "testdata/tinystories_sample.txt",
		"testdata/special_token_double_newlines_non_whitespace.txt", "testdata/special_token_trailing_newlines.txt",
		"testdata/corpus.en"}
	if !testing.Short() {
		files = append(files, shakespearePath)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := tok.EncodeBytes(data)
		for _, tiktoken := range []bool{false, true} {
			if want := ref.encode(t, string(data), true, tiktoken); !slices.Equal(got, want) {
				for k := range min(len(got), len(want)) {
					if got[k] != want[k] {
						t.Fatalf("%s (tiktoken-style=%v): id %d is %d, reference %d", f, tiktoken, k, got[k], want[k])
					}
				}
				t.Fatalf("%s (tiktoken-style=%v): %d ids, reference %d", f, tiktoken, len(got), len(want))
			}
		}
		back, err := tok.Decode(got)
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s: Decode(Encode(text)) differs from text (err %v)", f, err)
		}
	}
}

// Every GPT-2 token encodes to itself: a piece that is a token gives that one id.
func TestGPT2TokensEncodeToThemselves(t *testing.T) {
	tok := loadGPT2(t)
	e := tok.getEncoder()
	defer tok.putEncoder(e)
	bad := 0
	for id := range tok.VocabSize() {
		if id == 50256 {
			continue
		}
		syms := tok.bpe(nil, tok.Token(id))
		if len(syms) != 1 || int(syms[0]) != id {
			bad++
			if bad < 5 {
				t.Errorf("token %d %q encodes to %v", id, tok.Token(id), syms)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d tokens do not encode to themselves", bad)
	}
}

func TestRandomTextMatchesReference(t *testing.T) {
	tok := loadGPT2(t)
	ref := loadGPT2Ref(t)
	r := newTestRand(3)
	for range 300 {
		s := randomText(r, 1+r.IntN(60))
		got := tok.Encode(s)
		if want := ref.encode(t, s, true, false); !slices.Equal(got, want) {
			t.Fatalf("Encode(%q) = %v, reference %v", s, got, want)
		}
	}
}

func TestOverlappingSpecialTokens(t *testing.T) {
	double := EndOfText + EndOfText
	tok, err := LoadFiles(gpt2Dir+"/vocab.json", gpt2Dir+"/merges.txt", []string{EndOfText, double})
	if err != nil {
		t.Fatal(err)
	}
	text := "Hello, how <|endoftext|><|endoftext|> are you?<|endoftext|>"
	ids := tok.Encode(text)
	counts := map[string]int{}
	for _, id := range ids {
		counts[string(tok.Token(id))]++
	}
	if counts[EndOfText] != 1 || counts[double] != 1 {
		t.Errorf("want each special token once, got %d single and %d double", counts[EndOfText], counts[double])
	}
	if id, _ := tok.SpecialID(double); id != 50257 {
		t.Errorf("new special token got id %d, want 50257", id)
	}
	back, _ := tok.Decode(ids)
	if string(back) != text {
		t.Errorf("round trip: %q", back)
	}
}

func TestDecodeErrors(t *testing.T) {
	tok := loadGPT2(t)
	for _, ids := range [][]int{{-1}, {50257}, {1, 2, 1 << 40}} {
		if _, err := tok.Decode(ids); err == nil {
			t.Errorf("Decode(%v): want an error", ids)
		}
	}
	// A prefix may end inside a character: bytes are kept as they are.
	ids := tok.Encode("日本")
	for k := range ids {
		b, err := tok.Decode(ids[:k])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix("日本", string(b)) {
			t.Errorf("prefix %d decodes to %q", k, b)
		}
	}
	if b, _ := tok.Decode(ids[:1]); utf8.Valid(b) && len(ids) > 2 {
		t.Logf("first id of %v decodes to valid UTF-8 %q", ids, b)
	}
}

func FuzzEncodeMatchesReference(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add(s)
	}
	tok := loadGPT2(f)
	ref := loadGPT2Ref(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the reference engine only sees runes
		}
		if got, want := tok.Encode(s), ref.encode(t, s, true, false); !slices.Equal(got, want) {
			t.Fatalf("Encode(%q) = %v, reference %v", s, got, want)
		}
	})
}
