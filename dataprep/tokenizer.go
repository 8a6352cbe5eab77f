package dataprep

import (
	"errors"
	"fmt"

	"github.com/ringtrain/ringtrain/tokenizer"
)

// ErrNoSeparator: the separator is not a token of the tokenizer.
var ErrNoSeparator = errors.New("not a token of tokenizer")

var _ Encoder = (*tokenizer.Tokenizer)(nil)

// LoadTokenizer loads the tokenizer in dir with sep ("" = none) as one of
// its special tokens. A vocabulary entry with sep's bytes becomes special;
// a new id cannot be invented, since a model and the saved tokenizer would
// not know it: then the error wraps ErrNoSeparator.
func LoadTokenizer(dir, sep string) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	if sep == "" {
		return tok, nil
	}
	if _, ok := tok.SpecialID(sep); ok {
		return tok, nil
	}
	withSep, err := tokenizer.Load(dir, sep)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	if withSep.VocabSize() != tok.VocabSize() {
		return nil, fmt.Errorf("separator %q: %w %s", sep, ErrNoSeparator, dir)
	}
	return withSep, nil
}
