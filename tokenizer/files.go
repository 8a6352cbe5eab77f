package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ringtrain/ringtrain/internal/readlimit"
)

// File names inside a tokenizer directory.
const (
	VocabFile   = "vocab.json"
	MergesFile  = "merges.txt"
	SpecialFile = "special_tokens.json"
)

// EndOfText is GPT-2's document separator. Load treats it as a special
// token when the directory has no special_tokens.json and vocab.json has it.
const EndOfText = "<|endoftext|>"

// Load reads a tokenizer directory: vocab.json, merges.txt and, when
// present, special_tokens.json (a JSON list of strings). Without
// special_tokens.json the special tokens are <|endoftext|> if vocab.json has
// it, else none. A directory with only a Hugging Face tokenizer.json, or
// the path of such a file, is read with ParseTokenizerJSON. extra adds
// more special tokens (appended to the vocabulary when they are new).
func Load(dir string, extra ...string) (*Tokenizer, error) {
	if p, ok := jsonForm(dir); ok {
		return loadJSON(p, extra)
	}
	var special []string
	specPath := filepath.Join(dir, SpecialFile)
	data, err := readlimit.File(specPath, MaxFileBytes)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &special); err != nil {
			return nil, fmt.Errorf("%s: want a JSON list of strings: %w", specPath, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		special = nil // decided below, once vocab.json is read
	default:
		return nil, err
	}
	vocab, err := ReadVocab(filepath.Join(dir, VocabFile))
	if err != nil {
		return nil, err
	}
	merges, err := ReadMerges(filepath.Join(dir, MergesFile))
	if err != nil {
		return nil, err
	}
	if data == nil && slices.ContainsFunc(vocab, func(tok []byte) bool { return string(tok) == EndOfText }) {
		special = []string{EndOfText}
	}
	t, err := New(vocab, merges, append(special, extra...))
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	return t, nil
}

// jsonForm reports the tokenizer.json to read for path: path itself when it
// is a .json file, or dir/tokenizer.json when dir has no vocab.json.
func jsonForm(path string) (string, bool) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && strings.HasSuffix(path, ".json") {
		return path, true
	}
	if _, err := os.Stat(filepath.Join(path, VocabFile)); err == nil {
		return "", false
	}
	p := filepath.Join(path, JSONFile)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p, true
	}
	return "", false
}

func loadJSON(path string, extra []string) (*Tokenizer, error) {
	data, err := readlimit.File(path, MaxFileBytes)
	if err != nil {
		return nil, err
	}
	vocab, merges, special, err := parseTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := New(vocab, merges, append(special, extra...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// LoadFiles builds a tokenizer from a GPT-2 style vocab.json and merges.txt
// with exactly the special tokens given (no auto-detection).
func LoadFiles(vocabPath, mergesPath string, special []string) (*Tokenizer, error) {
	vocab, err := ReadVocab(vocabPath)
	if err != nil {
		return nil, err
	}
	merges, err := ReadMerges(mergesPath)
	if err != nil {
		return nil, err
	}
	t, err := New(vocab, merges, special)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", vocabPath, mergesPath, err)
	}
	return t, nil
}

// ReadVocab reads a GPT-2 vocab.json: an object from token (bytes in GPT-2's
// byte-to-unicode form) to id. The ids must be 0..n-1, each once. A key
// with a character outside that form (an added token written literally) is
// taken as its UTF-8 bytes.
func ReadVocab(path string) ([][]byte, error) {
	data, err := readlimit.File(path, MaxFileBytes)
	if err != nil {
		return nil, err
	}
	var m map[string]int
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vocab := make([][]byte, len(m))
	for key, id := range m {
		if id < 0 || id >= len(m) {
			return nil, fmt.Errorf("%s: %w: id %d of %q outside 0..%d", path, ErrBadVocab, id, key, len(m)-1)
		}
		if vocab[id] != nil {
			return nil, fmt.Errorf("%s: %w: id %d used twice", path, ErrBadVocab, id)
		}
		b, ok := DecodeGPT2Bytes(key)
		if !ok {
			b = []byte(key)
		}
		vocab[id] = b
	}
	return vocab, nil
}

// ReadMerges reads a GPT-2 merges.txt: one merge per line, two tokens in
// byte-to-unicode form separated by one space; an optional first line
// starting with "#version" and empty lines are skipped.
func ReadMerges(path string) ([][2][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var merges [][2][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || (line == 1 && strings.HasPrefix(text, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(text, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%s:%d: %w: want two tokens separated by one space, got %q", path, line, ErrBadMerges, text)
		}
		ba, okA := DecodeGPT2Bytes(a)
		bb, okB := DecodeGPT2Bytes(b)
		if !okA || !okB {
			return nil, fmt.Errorf("%s:%d: %w: %q is not in GPT-2 byte-to-unicode form", path, line, ErrBadMerges, text)
		}
		merges = append(merges, [2][]byte{ba, bb})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return merges, nil
}

// Save writes dir/vocab.json, dir/merges.txt (with a "#version: 0.2" first
// line) and dir/special_tokens.json, creating dir if needed. Load reads
// them back to an identical tokenizer.
func (t *Tokenizer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var vb bytes.Buffer
	vb.WriteString("{\n")
	for id, tok := range t.vocab {
		key := EncodeGPT2Bytes(tok)
		if id > 0 {
			vb.WriteString(",\n")
		}
		fmt.Fprintf(&vb, "  %s: %d", jsonString(key), id)
	}
	vb.WriteString("\n}\n")
	var mb bytes.Buffer
	mb.WriteString("#version: 0.2\n")
	for _, m := range t.merges {
		mb.WriteString(EncodeGPT2Bytes(t.vocab[m[0]]))
		mb.WriteByte(' ')
		mb.WriteString(EncodeGPT2Bytes(t.vocab[m[1]]))
		mb.WriteByte('\n')
	}
	var sb bytes.Buffer
	sb.WriteString("[")
	for k, s := range t.special {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(jsonString(s))
	}
	sb.WriteString("]\n")
	for _, f := range []struct {
		name string
		data []byte
	}{{VocabFile, vb.Bytes()}, {MergesFile, mb.Bytes()}, {SpecialFile, sb.Bytes()}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

// MaxFileBytes bounds the size of a tokenizer file that is read whole.
const MaxFileBytes = 256 << 20

// jsonString quotes s as JSON without HTML escaping ("<|endoftext|>" stays readable).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
