package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pattern is the GPT-2 pre-tokenization regular expression. The package does
// not use a regexp engine: nextPreToken is a hand-written scanner with the
// same leftmost-first semantics (Go's regexp lacks the lookahead).
const Pattern = `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// Character classes of the pattern. Bytes that are not valid UTF-8 count as
// clsOther, like any symbol, so every byte string splits without loss.
const (
	clsOther uint8 = iota
	clsLetter
	clsNumber
	clsSpace
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for c := range utf8.RuneSelf {
		asciiClass[c] = runeClass(rune(c))
	}
}

func runeClass(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r): // exactly the Unicode White_Space property, like \s
		return clsSpace
	}
	return clsOther
}

// classAt returns the class and byte length of the character at b[i].
func classAt(b []byte, i int) (uint8, int) {
	if c := b[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && n == 1 {
		return clsOther, 1
	}
	return runeClass(r), n
}

// nextPreToken returns the end of the pre-token that starts at b[i]
// (i < len(b)), following Pattern alternative by alternative:
//
//	'(?:[sdmt]|ll|ve|re)   a contraction
//	 ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+   an optional space, then a run of one class
//	\s+(?!\S)              a whitespace run, minus its last character if a non-space follows
//	\s+                    (a single whitespace character before a non-space)
func nextPreToken(b []byte, i int) int {
	n := len(b)
	c := b[i]
	if c == '\'' && i+1 < n {
		switch b[i+1] {
		case 's', 'd', 'm', 't':
			return i + 2
		case 'l':
			if i+2 < n && b[i+2] == 'l' {
				return i + 3
			}
		case 'v', 'r':
			if i+2 < n && b[i+2] == 'e' {
				return i + 3
			}
		}
	}
	j := i
	if c == ' ' {
		j++
	}
	if j < n {
		cls, size := classAt(b, j)
		if cls != clsSpace {
			k := j + size
			for k < n {
				c2, s2 := classAt(b, k)
				if c2 != cls {
					break
				}
				k += s2
			}
			return k
		}
	}
	// A whitespace run starts at i.
	k, last := i, i
	for k < n {
		cls, size := classAt(b, k)
		if cls != clsSpace {
			break
		}
		last = k
		k += size
	}
	if k < n && last > i {
		return last
	}
	return k
}

// preTokenize calls fn with each pre-token of b in order.
func preTokenize(b []byte, fn func(tok []byte)) {
	for i := 0; i < len(b); {
		j := nextPreToken(b, i)
		fn(b[i:j])
		i = j
	}
}

// PreTokenize splits text into GPT-2 pre-tokens (no special-token handling).
// Concatenating the result gives text back.
func PreTokenize(text []byte) [][]byte {
	var out [][]byte
	preTokenize(text, func(tok []byte) { out = append(out, tok) })
	return out
}
