package hf

import (
	"encoding/json"
	"io"
	"strconv"

	"github.com/ringtrain/ringtrain/tokenizer"
)

// Tokenizer file names that Hugging Face's AutoTokenizer reads beside
// vocab.json and merges.txt.
const (
	TokenizerConfigFile  = "tokenizer_config.json"
	SpecialTokensMapFile = "special_tokens_map.json"
)

// WriteTokenizer writes tok into dir the way Hugging Face's GPT-2
// tokenizer loads it: vocab.json, merges.txt (and special_tokens.json, so
// tokenizer.Load reads the same special tokens back), tokenizer_config.json
// (GPT2Tokenizer, no prefix space, no clean-up of spaces on decoding,
// model_max_length = contextLength, every special token in
// added_tokens_decoder) and special_tokens_map.json (<|endoftext|> as bos,
// eos and unk when the tokenizer has it; the other special tokens as
// additional_special_tokens).
func WriteTokenizer(dir string, tok *tokenizer.Tokenizer, contextLength int) error {
	if err := tok.Save(dir); err != nil {
		return err
	}
	type addedToken struct {
		Content    string `json:"content"`
		Lstrip     bool   `json:"lstrip"`
		Normalized bool   `json:"normalized"`
		Rstrip     bool   `json:"rstrip"`
		SingleWord bool   `json:"single_word"`
		Special    bool   `json:"special"`
	}
	added := map[string]addedToken{}
	special := map[string]any{}
	var extra []string
	for _, s := range tok.SpecialTokens() {
		id, _ := tok.SpecialID(s)
		added[strconv.Itoa(id)] = addedToken{Content: s, Special: true}
		if s == tokenizer.EndOfText {
			special["bos_token"], special["eos_token"], special["unk_token"] = s, s, s
		} else {
			extra = append(extra, s)
		}
	}
	if extra != nil {
		special["additional_special_tokens"] = extra
	}
	cfg := map[string]any{
		"tokenizer_class":              "GPT2Tokenizer",
		"add_prefix_space":             false,
		"add_bos_token":                false,
		"clean_up_tokenization_spaces": false,
		"errors":                       "replace",
		"model_max_length":             contextLength,
		"added_tokens_decoder":         added,
	}
	for k, v := range special {
		cfg[k] = v
	}
	for name, v := range map[string]any{TokenizerConfigFile: cfg, SpecialTokensMapFile: special} {
		if err := writeJSON(dir, name, v); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v as indented JSON without HTML escaping ("<|endoftext|>" stays readable).
func writeJSON(dir, name string, v any) error {
	return writeFile(dir, name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
