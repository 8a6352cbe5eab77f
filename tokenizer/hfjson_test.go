package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// gpt2JSON writes GPT-2's tokenizer (testdata/gpt2) as a Hugging Face
// tokenizer.json, merges as "a b" strings or as pairs, with edit applied.
func gpt2JSON(t testing.TB, pairs bool, edit func(m map[string]any)) []byte {
	vb, err := os.ReadFile("testdata/gpt2/vocab.json")
	if err != nil {
		t.Fatal(err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(vb, &vocab); err != nil {
		t.Fatal(err)
	}
	mb, _ := os.ReadFile("testdata/gpt2/merges.txt")
	var merges []any
	for _, line := range strings.Split(string(mb), "\n")[1:] {
		if a, b, ok := strings.Cut(line, " "); ok {
			if pairs {
				merges = append(merges, []string{a, b})
			} else {
				merges = append(merges, line)
			}
		}
	}
	m := map[string]any{
		"version":        "1.0",
		"added_tokens":   []any{map[string]any{"id": 50256, "content": EndOfText, "special": true, "lstrip": false, "rstrip": false, "normalized": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "trim_offsets": false},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTokenizerJSON: GPT-2's tokenizer.json (both merge formats, as a
// directory or as the file) encodes exactly like its vocab.json/merges.txt.
func TestTokenizerJSON(t *testing.T) {
	want, err := Load("testdata/gpt2")
	if err != nil {
		t.Fatal(err)
	}
	text := "Hello world! <|endoftext|> It's 2024 —   naïve café\n\n\tcode()"
	for _, pairs := range []bool{false, true} {
		dir := t.TempDir()
		p := filepath.Join(dir, JSONFile)
		if err := os.WriteFile(p, gpt2JSON(t, pairs, nil), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{dir, p} {
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.VocabSize() != want.VocabSize() || !slices.Equal(got.SpecialTokens(), want.SpecialTokens()) ||
				!slices.Equal(got.Encode(text), want.Encode(text)) {
				t.Errorf("pairs=%v %s: vocab %d, special %q, ids differ: %v", pairs, path, got.VocabSize(), got.SpecialTokens(), !slices.Equal(got.Encode(text), want.Encode(text)))
			}
		}
		if names, err := Files(dir); err != nil || !slices.Equal(names, []string{JSONFile}) {
			t.Errorf("Files: %v, %v", names, err)
		}
	}
}

func TestTokenizerJSONRefusals(t *testing.T) {
	for _, tc := range []struct {
		want string
		edit func(m map[string]any)
	}{
		{`model.type "WordPiece"`, func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" }},
		{"model.byte_fallback true", func(m map[string]any) { m["model"].(map[string]any)["byte_fallback"] = true }},
		{`model.continuing_subword_prefix "##"`, func(m map[string]any) { m["model"].(map[string]any)["continuing_subword_prefix"] = "##" }},
		{`normalizer {"type":"NFC"}`, func(m map[string]any) { m["normalizer"] = map[string]any{"type": "NFC"} }},
		{`pre_tokenizer {"type":"Metaspace"`, func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Metaspace"} }},
		{"pre_tokenizer missing", func(m map[string]any) { delete(m, "pre_tokenizer") }},
		{"pre_tokenizer.add_prefix_space true", func(m map[string]any) { m["pre_tokenizer"].(map[string]any)["add_prefix_space"] = true }},
		{"pre_tokenizer.use_regex false", func(m map[string]any) { m["pre_tokenizer"].(map[string]any)["use_regex"] = false }},
		{`decoder {"type":"WordPiece"}`, func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} }},
		{"added_tokens[0] (\"<|endoftext|>\"): lstrip", func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"id": 50256, "content": EndOfText, "lstrip": true}}
		}},
		{"added_tokens[0]: id 99999999999 outside", func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"id": 99999999999, "content": "<x>"}}
		}},
		{"added_tokens[0]: id 0 is also", func(m map[string]any) { m["added_tokens"] = []any{map[string]any{"id": 0, "content": "<x>"}} }},
		{"model.vocab: no token has id 0", func(m map[string]any) { delete(m["model"].(map[string]any)["vocab"].(map[string]int), "!") }},
		{`model.merges[0] "Ġ t x": want two tokens`, func(m map[string]any) {
			mm := m["model"].(map[string]any)
			mm["merges"] = append([]any{"Ġ t x"}, mm["merges"].([]any)...)
		}},
		{"model.merges[0] [1]", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{[]int{1}} }},
	} {
		_, err := ParseTokenizerJSON(gpt2JSON(t, false, tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}

// FuzzTokenizerJSON: any tokenizer.json parses into a tokenizer that
// round-trips text, or gives an error; no panic.
func FuzzTokenizerJSON(f *testing.F) {
	tok, err := Train(DefaultTrainConfig(280), bytes.NewReader(bytes.Repeat([]byte("the cat sat on the mat. "), 20)))
	if err != nil {
		f.Fatal(err)
	}
	vocab := map[string]int{}
	for id, b := range tok.Vocab() {
		vocab[EncodeGPT2Bytes(b)] = id
	}
	var merges []string
	for _, m := range tok.Merges() {
		merges = append(merges, EncodeGPT2Bytes(m[0])+" "+EncodeGPT2Bytes(m[1]))
	}
	seed, _ := json.Marshal(map[string]any{
		"added_tokens":  []any{map[string]any{"id": len(vocab), "content": EndOfText}},
		"pre_tokenizer": map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	})
	f.Add(seed)
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":5},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	text := []byte("the cat\x00\xff é <|endoftext|> mat")
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := ParseTokenizerJSON(b)
		if err != nil {
			return
		}
		back, err := tok.Decode(tok.EncodeBytes(text))
		if err != nil || !bytes.Equal(back, text) {
			t.Fatalf("round trip: %q, %v", back, err)
		}
	})
}
