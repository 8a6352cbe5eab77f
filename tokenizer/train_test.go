package tokenizer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readReferenceMerges reads a merges file in GPT-2 form into raw byte pairs.
func readReferenceMerges(t *testing.T, path string) [][2][]byte {
	t.Helper()
	m, err := ReadMerges(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrainReferenceCorpus(t *testing.T) {
	tok, err := TrainFiles(TrainConfig{VocabSize: 500, Special: []string{EndOfText}}, "testdata/corpus.en")
	if err != nil {
		t.Fatal(err)
	}
	want := readReferenceMerges(t, "testdata/train-bpe-reference-merges.txt")
	got := tok.Merges()
	if len(got) != len(want) {
		t.Errorf("got %d merges, want %d", len(got), len(want))
	}
	for k := range min(len(got), len(want)) {
		if string(got[k][0]) != string(want[k][0]) || string(got[k][1]) != string(want[k][1]) {
			t.Fatalf("merge %d: got (%q %q), want (%q %q)", k, got[k][0], got[k][1], want[k][0], want[k][1])
		}
	}
	// The reference vocabulary, id for id.
	data, err := os.ReadFile("testdata/train-bpe-reference-vocab.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]int
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != len(ref) {
		t.Errorf("vocab size %d, want %d", tok.VocabSize(), len(ref))
	}
	for key, id := range ref {
		if got := EncodeGPT2Bytes(tok.Token(id)); got != key {
			t.Errorf("id %d: got %q, want %q", id, got, key)
		}
	}
	// Saved files: vocab.json has the same map; merges.txt the same lines.
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	var saved map[string]int
	data, _ = os.ReadFile(filepath.Join(dir, VocabFile))
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved) != len(ref) {
		t.Errorf("saved vocab has %d entries, want %d", len(saved), len(ref))
	}
	for k, v := range ref {
		if saved[k] != v {
			t.Errorf("saved vocab[%q] = %d, want %d", k, saved[k], v)
		}
	}
	mergesTxt, _ := os.ReadFile(filepath.Join(dir, MergesFile))
	refTxt, _ := os.ReadFile("testdata/train-bpe-reference-merges.txt")
	if got, want := strings.TrimPrefix(string(mergesTxt), "#version: 0.2\n"), string(refTxt); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("saved merges.txt differs from the reference")
	}
}

// naiveTrain is the textbook algorithm: recount every pair after each merge.
// Pre-tokens come from the regexp2 reference; text is split at special tokens.
func naiveTrain(t *testing.T, text string, special []string, merges int) [][2]string {
	t.Helper()
	counts := map[string]int{}
	segs := []string{text}
	for _, sp := range special {
		var next []string
		for _, s := range segs {
			next = append(next, strings.Split(s, sp)...)
		}
		segs = next
	}
	for _, s := range segs {
		for _, p := range refPreTokenize(t, s) {
			counts[p]++
		}
	}
	type word struct {
		syms  []string
		count int
	}
	var words []word
	for p, c := range counts {
		syms := make([]string, len(p))
		for i := range len(p) {
			syms[i] = p[i : i+1]
		}
		words = append(words, word{syms, c})
	}
	var out [][2]string
	for range merges {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		var best [2]string
		bestCount := 0
		for p, c := range pairs {
			if c > bestCount || (c == bestCount && (p[0] > best[0] || (p[0] == best[0] && p[1] > best[1]))) {
				best, bestCount = p, c
			}
		}
		if bestCount == 0 {
			break
		}
		out = append(out, best)
		for k, w := range words {
			var syms []string
			for i := 0; i < len(w.syms); {
				if i+1 < len(w.syms) && w.syms[i] == best[0] && w.syms[i+1] == best[1] {
					syms = append(syms, best[0]+best[1])
					i += 2
				} else {
					syms = append(syms, w.syms[i])
					i++
				}
			}
			words[k].syms = syms
		}
	}
	return out
}

func TestTrainMatchesNaive(t *testing.T) {
	r := newTestRand(11)
	tinystories, err := os.ReadFile("testdata/tinystories_sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		text    string
		special []string
		vocab   int
	}{
		{"tinystories", string(tinystories), []string{EndOfText}, 700},
		{"repeats", "aaaa aaa aaaaaaa abab ababab ba ba bab " + strings.Repeat("aaaaa ", 7), nil, 280},
		{"two-specials", "x<|a|>yy<|bb|>zz zz " + randomText(r, 300), []string{"<|a|>", "<|bb|>"}, 400},
	}
	for k := range 20 {
		tests = append(tests, struct {
			name    string
			text    string
			special []string
			vocab   int
		}{fmt.Sprintf("random-%d", k), randomText(r, 50+r.IntN(400)), []string{EndOfText}, 257 + 1 + r.IntN(150)})
	}
	for _, tc := range tests {
		tok, err := Train(TrainConfig{VocabSize: tc.vocab, Special: tc.special, ChunkSize: 64}, strings.NewReader(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		got := tok.Merges()
		want := naiveTrain(t, tc.text, tc.special, tc.vocab-256-len(tc.special))
		if len(got) != len(want) {
			t.Errorf("%s: %d merges, naive %d", tc.name, len(got), len(want))
		}
		for k := range min(len(got), len(want)) {
			if string(got[k][0]) != want[k][0] || string(got[k][1]) != want[k][1] {
				t.Fatalf("%s: merge %d is (%q %q), naive (%q %q)", tc.name, k, got[k][0], got[k][1], want[k][0], want[k][1])
			}
		}
		// The vocabulary: specials, bytes, then one token per merge.
		if want := len(tc.special) + 256 + len(got); tok.VocabSize() != want {
			t.Errorf("%s: VocabSize %d, want %d", tc.name, tok.VocabSize(), want)
		}
		for k, m := range got {
			if id, ok := tok.ID(append(append([]byte{}, m[0]...), m[1]...)); !ok || id != len(tc.special)+256+k {
				t.Errorf("%s: merge %d has id %d, want %d", tc.name, k, id, len(tc.special)+256+k)
			}
		}
		for k, sp := range tc.special {
			if id, ok := tok.SpecialID(sp); !ok || id != k {
				t.Errorf("%s: special %q has id %d, want %d", tc.name, sp, id, k)
			}
		}
	}
}

// The CS336 snapshot test_train_bpe_special_tokens was made from
// tinystories_sample_5M.txt, which is not in the fixtures (5 MB, Git LFS).
// Without it, this checks the snapshot's own structure and the property the
// CS336 test asserts (no regular token contains "<|"); with the file at
// $RINGTRAIN_TINYSTORIES_5M it compares merges and vocabulary exactly.
func TestTrainSpecialTokensSnapshot(t *testing.T) {
	var snap struct {
		Keys   []int      `json:"vocab_keys"`
		Values []string   `json:"vocab_values_hex"`
		Merges [][]string `json:"merges_hex"`
	}
	data, err := os.ReadFile("testdata/train_bpe_special_tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var merges [][2][]byte
	for _, m := range snap.Merges {
		merges = append(merges, [2][]byte{unhex(m[0]), unhex(m[1])})
	}
	wantValues := map[string]bool{}
	for _, v := range snap.Values {
		wantValues[string(unhex(v))] = true
	}
	check := func(name string, tok *Tokenizer) {
		if tok.VocabSize() != len(snap.Keys) {
			t.Errorf("%s: VocabSize %d, snapshot %d", name, tok.VocabSize(), len(snap.Keys))
		}
		for id := range tok.VocabSize() {
			if !slices.Contains(snap.Keys, id) {
				t.Errorf("%s: id %d not in the snapshot's keys", name, id)
			}
			if !wantValues[string(tok.Token(id))] {
				t.Errorf("%s: token %q not in the snapshot's values", name, tok.Token(id))
			}
			if tok := tok.Token(id); string(tok) != EndOfText && bytes.Contains(tok, []byte("<|")) {
				t.Errorf("%s: regular token %q contains <|", name, tok)
			}
		}
	}
	// The snapshot is a consistent BPE model of our vocabulary layout:
	// special, 256 bytes, then the concatenation of each merge.
	vocab := [][]byte{[]byte(EndOfText)}
	for k := range 256 {
		vocab = append(vocab, []byte{gpt2Order[k]})
	}
	for _, m := range merges {
		vocab = append(vocab, append(append([]byte{}, m[0]...), m[1]...))
	}
	snapTok, err := New(vocab, merges, []string{EndOfText})
	if err != nil {
		t.Fatalf("snapshot merges do not form a vocabulary: %v", err)
	}
	check("snapshot", snapTok)

	small, err := TrainFiles(TrainConfig{VocabSize: 1000, Special: []string{EndOfText}}, "testdata/tinystories_sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range small.Vocab() {
		if string(v) != EndOfText && bytes.Contains(v, []byte("<|")) {
			t.Errorf("tinystories_sample: regular token %q contains <|", v)
		}
	}

	t.Run("exact", func(t *testing.T) {
		path := os.Getenv("RINGTRAIN_TINYSTORIES_5M")
		if path == "" {
			t.Skip("set RINGTRAIN_TINYSTORIES_5M to tinystories_sample_5M.txt for the exact snapshot comparison")
		}
		tok, err := TrainFiles(TrainConfig{VocabSize: 1000, Special: []string{EndOfText}}, path)
		if err != nil {
			t.Fatal(err)
		}
		got := tok.Merges()
		if len(got) != len(merges) {
			t.Fatalf("%d merges, snapshot %d", len(got), len(merges))
		}
		for k := range got {
			if !bytes.Equal(got[k][0], merges[k][0]) || !bytes.Equal(got[k][1], merges[k][1]) {
				t.Fatalf("merge %d is (%q %q), snapshot (%q %q)", k, got[k][0], got[k][1], merges[k][0], merges[k][1])
			}
		}
		check("trained", tok)
	})
}

func TestTrainConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  TrainConfig
		want string // substring of the error, "" for valid
	}{
		{TrainConfig{VocabSize: 257, Special: []string{EndOfText}}, ""},
		{TrainConfig{VocabSize: 256, Special: []string{EndOfText}}, "VocabSize"},
		{TrainConfig{VocabSize: 300, Special: []string{"x"}}, "Special"},
		{TrainConfig{VocabSize: 300, Special: []string{"<a>", "<a>"}}, "twice"},
		{TrainConfig{VocabSize: 300, Workers: -1}, "Workers"},
		{TrainConfig{VocabSize: 300, ChunkSize: -5}, "ChunkSize"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}
