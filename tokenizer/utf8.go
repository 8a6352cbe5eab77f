package tokenizer

import (
	"io"
	"unicode/utf8"
)

// UTF8Writer passes decoded bytes on to an io.Writer as valid UTF-8, as
// soon as they form whole characters. Tokens need not end on a character
// boundary, so the incomplete start of a character at the end of a Write is
// held back until later writes complete it; every byte that cannot be part
// of a character is written as U+FFFD. Close writes what is still held back
// (each byte as U+FFFD). However the bytes are cut into writes, the text
// written is string([]rune(string(all bytes))).
type UTF8Writer struct {
	w       io.Writer
	pending []byte // the incomplete start of a character, at most 3 bytes
	out     []byte // scratch
}

// NewUTF8Writer returns a UTF8Writer that writes to w.
func NewUTF8Writer(w io.Writer) *UTF8Writer { return &UTF8Writer{w: w} }

// Write always consumes all of b; it reports only the underlying writer's
// errors.
func (u *UTF8Writer) Write(b []byte) (int, error) {
	src := b
	if len(u.pending) > 0 {
		u.pending = append(u.pending, b...)
		src = u.pending
	}
	var n int
	u.out, n = appendValidUTF8(u.out[:0], src, false)
	u.pending = append(u.pending[:0], src[n:]...)
	return len(b), u.emit()
}

// Close writes what is held back. It does not close the underlying writer.
func (u *UTF8Writer) Close() error {
	u.out, _ = appendValidUTF8(u.out[:0], u.pending, true)
	u.pending = u.pending[:0]
	return u.emit()
}

func (u *UTF8Writer) emit() error {
	if len(u.out) == 0 {
		return nil
	}
	_, err := u.w.Write(u.out)
	return err
}

// appendValidUTF8 appends src to dst with each byte that is not part of a
// valid character replaced by U+FFFD, and returns how many bytes of src it
// consumed: all of them if final, otherwise all but an incomplete character
// at the end, which later bytes may complete.
func appendValidUTF8(dst, src []byte, final bool) (out []byte, n int) {
	for n < len(src) {
		r, size := utf8.DecodeRune(src[n:])
		if r == utf8.RuneError && size == 1 {
			if !final && !utf8.FullRune(src[n:]) {
				break
			}
			dst = utf8.AppendRune(dst, utf8.RuneError)
			n++
			continue
		}
		dst = append(dst, src[n:n+size]...)
		n += size
	}
	return dst, n
}
