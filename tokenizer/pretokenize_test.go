package tokenizer

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// refPattern is the GPT-2 pattern run by a backtracking engine with lookahead,
// an independent reference for the hand-written scanner.
var refPattern = regexp2.MustCompile(Pattern, regexp2.None)

func refPreTokenize(t testing.TB, s string) []string {
	t.Helper()
	idx, err := refPattern.FindAllStringIndex(s, -1)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(idx))
	for k, m := range idx {
		out[k] = s[m[0]:m[1]]
	}
	return out
}

func strs(toks [][]byte) []string {
	out := make([]string, len(toks))
	for k, tok := range toks {
		out[k] = string(tok)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

func TestPreTokenizeExamples(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello, world!", []string{"Hello", ",", " world", "!"}},
		{"I'm don't we'll they've you're it'd", []string{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve", " you", "'re", " it", "'d"}},
		{"a   b", []string{"a", "  ", " b"}},
		{"a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"a \n b", []string{"a", " \n", " b"}},
		{"end   ", []string{"end", "   "}},
		{"x\tY", []string{"x", "\t", "Y"}},
		{"abc123 456", []string{"abc", "123", " 456"}},
		{"''s !'s", []string{"''", "s", " !'", "s"}},
		{"'S 'LL", []string{"'", "S", " '", "LL"}}, // contractions are lower case only
		{"héllo wörld 日本語", []string{"héllo", " wörld", " 日本語"}},
		{"a\u00a0b", []string{"a", "\u00a0", "b"}}, // NBSP is whitespace
		{"x\xffy \xfe\xfd", []string{"x", "\xff", "y", " \xfe\xfd"}},
		{"½ ²", []string{"½", " ²"}}, // \p{N} includes No
		{"", nil},
	}
	for _, tc := range tests {
		got := strs(PreTokenize([]byte(tc.in)))
		if !equalStrings(got, tc.want) {
			t.Errorf("PreTokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// randomText draws n characters from a mix that exercises every alternative
// of the pattern: ASCII and other letters, digits, apostrophes, punctuation,
// spaces, tabs, newlines and Unicode whitespace.
func randomText(r *rand.Rand, n int) string {
	pieces := []string{"a", "b", "Z", "s", "t", "l", "e", "v", "r", "d", "m", "é", "ß", "日", "Ω",
		"1", "9", "٣", "½", "'", "'", "!", ",", ".", "—", "😀", "<", "|",
		" ", " ", " ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028"}
	var b strings.Builder
	for range n {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestPreTokenizeMatchesRegexp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{}
	for _, f := range []string{"address.txt", "german.txt", "tinystories_sample.txt", "corpus.en",
		"special_token_double_newlines_non_whitespace.txt", "special_token_trailing_newlines.txt"} {
		data, err := os.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data))
	}
	for range 500 {
		inputs = append(inputs, randomText(r, 1+r.IntN(40)))
	}
	for _, in := range inputs {
		got := strs(PreTokenize([]byte(in)))
		want := refPreTokenize(t, in)
		if !equalStrings(got, want) {
			for k := range min(len(got), len(want)) {
				if got[k] != want[k] {
					t.Fatalf("input %q: token %d is %q, reference %q", in[:min(len(in), 200)], k, got[k], want[k])
				}
			}
			t.Fatalf("input %q: %d tokens, reference %d", in[:min(len(in), 200)], len(got), len(want))
		}
	}
}

func FuzzPreTokenize(f *testing.F) {
	for _, s := range []string{"Hello, world!", "a   b\n\n c", "it's 'll\t\u00a0x", "日本 語123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := strs(PreTokenize([]byte(s)))
		if strings.Join(toks, "") != s {
			t.Fatalf("pre-tokens of %q do not concatenate back", s)
		}
		if !utf8.ValidString(s) {
			return // the reference engine only sees runes
		}
		if want := refPreTokenize(t, s); !equalStrings(toks, want) {
			t.Fatalf("PreTokenize(%q) = %q, reference %q", s, toks, want)
		}
	})
}
