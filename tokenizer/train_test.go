package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
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
