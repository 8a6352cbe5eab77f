package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// JSONFile is the single-file form of a Hugging Face tokenizer.
const JSONFile = "tokenizer.json"

// hfTokenizer is the part of a Hugging Face tokenizer.json that a
// byte-level BPE tokenizer consists of.
type hfTokenizer struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Lstrip  bool   `json:"lstrip"`
		Rstrip  bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        struct {
		Type                    string          `json:"type"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
		EndOfWordSuffix         string          `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
	} `json:"model"`
}

// byteLevel is a ByteLevel pre-tokenizer or decoder.
type byteLevel struct {
	Type           string `json:"type"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
}

// ParseTokenizerJSON reads a Hugging Face tokenizer.json holding a
// byte-level BPE tokenizer in GPT-2's form: model.type BPE with vocab and
// merges (as "a b" strings or [a, b] pairs), the ByteLevel pre-tokenizer
// with GPT-2's regex and no prefix space, no normalizer. Every added token
// becomes a special token (Hugging Face, too, matches them before the
// BPE). Anything else is refused with an error naming the field.
func ParseTokenizerJSON(data []byte) (*Tokenizer, error) {
	vocab, merges, special, err := parseTokenizerJSON(data)
	if err != nil {
		return nil, err
	}
	return New(vocab, merges, special)
}

func parseTokenizerJSON(data []byte) (vocab [][]byte, merges [][2][]byte, special []string, err error) {
	fail := func(format string, args ...any) ([][]byte, [][2][]byte, []string, error) {
		return nil, nil, nil, fmt.Errorf(format, args...)
	}
	var h hfTokenizer
	if err := json.Unmarshal(data, &h); err != nil {
		return fail("%w", err)
	}
	if h.Model.Type != "BPE" {
		return fail("model.type %q: only BPE can be read", h.Model.Type)
	}
	switch {
	case h.Model.ContinuingSubwordPrefix != "":
		return fail("model.continuing_subword_prefix %q: not byte-level BPE", h.Model.ContinuingSubwordPrefix)
	case h.Model.EndOfWordSuffix != "":
		return fail("model.end_of_word_suffix %q: not byte-level BPE", h.Model.EndOfWordSuffix)
	case h.Model.ByteFallback:
		return fail("model.byte_fallback true: not byte-level BPE")
	case !isNull(h.Normalizer):
		return fail("normalizer %s: normalizers are not supported", short(h.Normalizer))
	}
	var pre byteLevel
	if err := json.Unmarshal(h.PreTokenizer, &pre); err != nil || pre.Type != "ByteLevel" {
		return fail("pre_tokenizer %s: only the ByteLevel pre-tokenizer (GPT-2's) can be read", short(h.PreTokenizer))
	}
	if pre.AddPrefixSpace {
		return fail("pre_tokenizer.add_prefix_space true: not supported")
	}
	if pre.UseRegex != nil && !*pre.UseRegex {
		return fail("pre_tokenizer.use_regex false: only GPT-2's pre-tokenizer regex is supported")
	}
	var dec byteLevel
	if !isNull(h.Decoder) && (json.Unmarshal(h.Decoder, &dec) != nil || dec.Type != "ByteLevel") {
		return fail("decoder %s: only the ByteLevel decoder can be read", short(h.Decoder))
	}

	n := len(h.Model.Vocab) + len(h.AddedTokens) // ids must be 0..size-1, size ≤ n
	byID := make([][]byte, n)
	size := 0
	place := func(what string, id int, tok []byte) error {
		if id < 0 || id >= n {
			return fmt.Errorf("%s: id %d outside 0..%d", what, id, n-1)
		}
		if byID[id] != nil && !bytes.Equal(byID[id], tok) {
			return fmt.Errorf("%s: id %d is also %q", what, id, byID[id])
		}
		byID[id] = tok
		size = max(size, id+1)
		return nil
	}
	for key, id := range h.Model.Vocab {
		b, ok := DecodeGPT2Bytes(key)
		if !ok {
			b = []byte(key)
		}
		if err := place(fmt.Sprintf("model.vocab[%q]", key), id, b); err != nil {
			return fail("%w", err)
		}
	}
	for i, a := range h.AddedTokens {
		what := fmt.Sprintf("added_tokens[%d]", i)
		switch {
		case a.Content == "":
			return fail("%s.content: empty", what)
		case a.Lstrip || a.Rstrip:
			return fail("%s (%q): lstrip and rstrip are not supported", what, a.Content)
		}
		if err := place(what, a.ID, []byte(a.Content)); err != nil {
			return fail("%w", err)
		}
		special = append(special, a.Content)
	}
	vocab = byID[:size]
	for id, tok := range vocab {
		if tok == nil {
			return fail("model.vocab: no token has id %d (ids must be 0..%d)", id, size-1)
		}
	}
	if merges, err = parseMerges(h.Model.Merges); err != nil {
		return fail("%w", err)
	}
	return vocab, merges, special, nil
}

// parseMerges reads model.merges: ["a b", ...] or [["a", "b"], ...].
func parseMerges(raw json.RawMessage) ([][2][]byte, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("model.merges: not a list: %w", err)
	}
	merges := make([][2][]byte, 0, len(list))
	for i, m := range list {
		var pair []string
		var s string
		if json.Unmarshal(m, &s) == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] %q: want two tokens separated by one space", i, s)
			}
			pair = []string{a, b}
		} else if json.Unmarshal(m, &pair) != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] %s: want \"a b\" or [\"a\", \"b\"]", i, short(m))
		}
		var mg [2][]byte
		for k, p := range pair {
			b, ok := DecodeGPT2Bytes(p)
			if !ok || p == "" {
				return nil, fmt.Errorf("model.merges[%d] %q: not in GPT-2 byte-to-unicode form", i, p)
			}
			mg[k] = b
		}
		merges = append(merges, mg)
	}
	return merges, nil
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// short quotes a JSON value for an error message, cut to 60 bytes.
func short(v json.RawMessage) string {
	s := string(bytes.TrimSpace(v))
	if s == "" {
		s = "missing"
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
