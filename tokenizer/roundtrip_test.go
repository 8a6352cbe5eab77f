package tokenizer

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	smallOnce sync.Once
	smallTok  *Tokenizer
	smallErr  error
)

// loadSmall trains a 400-token tokenizer on the reference corpus (a model
// with few merges, so unusual byte sequences stay as bytes).
func loadSmall(t testing.TB) *Tokenizer {
	t.Helper()
	smallOnce.Do(func() {
		smallTok, smallErr = TrainFiles(TrainConfig{VocabSize: 400, Special: []string{EndOfText, "<pad>"}}, "testdata/corpus.en")
	})
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallTok
}

var roundTripSeeds = []string{
	"", "Hello, world!", "<|endoftext|>", "a<|endoftext|>b<|endoftext|><|endoftext|>", "<|endoftext",
	"\xff\xfe\x00\x01", "日本語のテキスト", "It's   spaced \n\n\t out  ", "🤗 émoji ½ ²",
	"\xe6\x97", "<pad><|endoftext|><pad>", strings.Repeat("=", 300), strings.Repeat(" ", 100) + "x",
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s))
	}
	gpt2 := loadGPT2(f)
	small := loadSmall(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tok := range []*Tokenizer{gpt2, small} {
			ids := tok.EncodeBytes(b)
			back, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, b) {
				t.Fatalf("Decode(Encode(%q)) = %q", b, back)
			}
			var streamed []int
			if err := tok.EncodeStream(bytes.NewReader(b), func(ids []int) error {
				streamed = append(streamed, ids...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(streamed, ids) {
				t.Fatalf("EncodeStream(%q) = %v, Encode %v", b, streamed, ids)
			}
		}
	})
}

// Long pieces take the heap path; it must agree with the quadratic loop.
func TestBPEHeapMatchesLoop(t *testing.T) {
	r := newTestRand(5)
	for _, tok := range []*Tokenizer{loadGPT2(t), loadSmall(t)} {
		for range 300 {
			n := 2 + r.IntN(200)
			piece := make([]byte, n)
			alphabet := []byte("aaabbthe \n'=-")
			for i := range piece {
				if r.IntN(10) == 0 {
					piece[i] = byte(r.IntN(256))
				} else {
					piece[i] = alphabet[r.IntN(len(alphabet))]
				}
			}
			var syms []int32
			for _, c := range piece {
				syms = append(syms, tok.byteID[c])
			}
			heapOut := tok.bpeHeap(slices.Clone(syms))
			if loop := bpeLoopOnly(tok, syms); !slices.Equal(heapOut, loop) {
				t.Fatalf("piece %q: heap %v, loop %v", piece, heapOut, loop)
			}
			if got := tok.bpe(nil, piece); !slices.Equal(got, heapOut) {
				t.Fatalf("piece %q: bpe %v, heap %v", piece, got, heapOut)
			}
		}
	}
}

// bpeLoopOnly is the quadratic loop of bpe without the switch to the heap.
func bpeLoopOnly(t *Tokenizer, syms []int32) []int32 {
	syms = slices.Clone(syms)
	for len(syms) > 1 {
		best, at := int32(len(t.merges)), -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[pairKey(syms[i], syms[i+1])]; ok && r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b, to := t.merges[best][0], t.merges[best][1], t.mergeTo[best]
		var out []int32
		out = append(out, syms[:at]...)
		for i := at; i < len(syms); {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, to)
				i += 2
			} else {
				out = append(out, syms[i])
				i++
			}
		}
		syms = out
	}
	return syms
}

func TestSaveLoadRoundTrip(t *testing.T) {
	shakespeare, err := os.ReadFile(shakespearePath)
	if err != nil {
		t.Fatal(err)
	}
	text := append([]byte("<pad>x<|endoftext|>"), shakespeare[:20000]...)
	for name, tok := range map[string]*Tokenizer{"gpt2": loadGPT2(t), "small": loadSmall(t)} {
		dir := t.TempDir()
		if err := tok.Save(dir); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if back.VocabSize() != tok.VocabSize() || !slices.Equal(back.SpecialTokens(), tok.SpecialTokens()) {
			t.Errorf("%s: loaded vocab %d specials %q, saved %d %q", name, back.VocabSize(), back.SpecialTokens(), tok.VocabSize(), tok.SpecialTokens())
		}
		for id := range tok.VocabSize() {
			if !bytes.Equal(back.Token(id), tok.Token(id)) {
				t.Fatalf("%s: token %d is %q after loading, %q before", name, id, back.Token(id), tok.Token(id))
			}
		}
		if !slices.EqualFunc(back.Merges(), tok.Merges(), func(a, b [2][]byte) bool {
			return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1])
		}) {
			t.Errorf("%s: merges differ after loading", name)
		}
		if !slices.Equal(back.EncodeBytes(text), tok.EncodeBytes(text)) {
			t.Errorf("%s: encodings differ after loading", name)
		}
	}
}

func TestLoadSpecialTokens(t *testing.T) {
	// No special_tokens.json: <|endoftext|> is detected in vocab.json.
	tok := loadGPT2(t)
	if got := tok.SpecialTokens(); !slices.Equal(got, []string{EndOfText}) {
		t.Errorf("auto-detected specials %q", got)
	}
	// Extra specials are appended; a special_tokens.json overrides detection.
	dir := t.TempDir()
	for _, f := range []string{VocabFile, MergesFile} {
		data, err := os.ReadFile(gpt2Dir + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	extra, err := Load(dir, "<|im_start|>")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := extra.SpecialID("<|im_start|>"); !ok || id != 50257 {
		t.Errorf("extra special: id %d, %v", id, ok)
	}
	if err := os.WriteFile(dir+"/"+SpecialFile, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	none, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(none.SpecialTokens()) != 0 || len(none.Encode(EndOfText)) == 1 {
		t.Errorf("with an empty special_tokens.json, <|endoftext|> must be plain text")
	}
	if err := os.WriteFile(dir+"/"+SpecialFile, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), SpecialFile) {
		t.Errorf("bad special_tokens.json: error %v should name the file", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"vocab not json", func() error { _, err := ReadVocab(write("v1.json", "[")); return err }, "v1.json"},
		{"vocab id gap", func() error { _, err := ReadVocab(write("v2.json", `{"a":0,"b":2}`)); return err }, "outside"},
		{"merges one field", func() error { _, err := ReadMerges(write("m1.txt", "#version: 0.2\nab\n")); return err }, "m1.txt:2"},
		{"merges missing token", func() error {
			_, err := LoadFiles(gpt2Dir+"/vocab.json", write("m2.txt", "Ġ zzzzzz\n"), nil)
			return err
		}, "missing"},
	}
	for _, tc := range tests {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
