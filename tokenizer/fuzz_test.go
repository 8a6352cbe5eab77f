package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad writes arbitrary vocab.json, merges.txt and special_tokens.json
// files and loads them: no panic; a tokenizer that loads encodes and
// decodes a text with every kind of byte back to itself.
func FuzzLoad(f *testing.F) {
	seed := f.TempDir()
	tok, err := Train(DefaultTrainConfig(300), bytes.NewReader(bytes.Repeat([]byte("the cat sat on the mat. <|endoftext|> "), 20)))
	if err != nil {
		f.Fatal(err)
	}
	if err := tok.Save(seed); err != nil {
		f.Fatal(err)
	}
	read := func(name string) []byte { b, _ := os.ReadFile(filepath.Join(seed, name)); return b }
	f.Add(read(VocabFile), read(MergesFile), read(SpecialFile))
	f.Add([]byte(`{"a": 0}`), []byte("a a\n"), []byte(`["<x>"]`))
	f.Add([]byte(`{"a": 99999999999}`), []byte(""), []byte(""))
	text := []byte("the cat\x00\xff é <|endoftext|> mat")
	f.Fuzz(func(t *testing.T, vocab, merges, special []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, VocabFile), vocab, 0o644)
		os.WriteFile(filepath.Join(dir, MergesFile), merges, 0o644)
		if len(special) > 0 {
			os.WriteFile(filepath.Join(dir, SpecialFile), special, 0o644)
		}
		tok, err := Load(dir)
		if err != nil {
			return
		}
		back, err := tok.Decode(tok.EncodeBytes(text))
		if err != nil || !bytes.Equal(back, text) {
			t.Fatalf("round trip: %q, %v", back, err)
		}
	})
}
