package tokenizer

import "unicode/utf8"

// GPT-2 renders every byte as a printable rune so that vocab.json and
// merges.txt are valid text without spaces inside a token: the printable
// Latin-1 bytes stand for themselves and the other 68 bytes map to
// U+0100 + k in byte order (space becomes 'Ġ', newline 'Ċ').
var (
	byteToRune  [256]rune
	runeToByte  = make(map[rune]byte, 256)
	gpt2Order   [256]byte // gpt2Order[k] is the byte GPT-2 gives base id k
	byteToOrder [256]int  // inverse of gpt2Order
)

func init() {
	k := 0
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := range 256 {
		if printable(b) {
			byteToRune[b] = rune(b)
			gpt2Order[k] = byte(b)
			k++
		}
	}
	n := 0
	for b := range 256 {
		if !printable(b) {
			byteToRune[b] = rune(256 + n)
			gpt2Order[k] = byte(b)
			k++
			n++
		}
	}
	for b := range 256 {
		runeToByte[byteToRune[b]] = byte(b)
		byteToOrder[gpt2Order[b]] = b
	}
}

// EncodeGPT2Bytes renders raw token bytes in GPT-2's byte-to-unicode form,
// as used for the keys of vocab.json and the fields of merges.txt.
func EncodeGPT2Bytes(b []byte) string {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = utf8.AppendRune(out, byteToRune[c])
	}
	return string(out)
}

// DecodeGPT2Bytes is the inverse of EncodeGPT2Bytes. ok is false when s
// holds a rune outside the 256 runes of the mapping.
func DecodeGPT2Bytes(s string) (b []byte, ok bool) {
	b = make([]byte, 0, len(s))
	for _, r := range s {
		c, found := runeToByte[r]
		if !found {
			return nil, false
		}
		b = append(b, c)
	}
	return b, true
}
