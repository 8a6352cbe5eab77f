package shard

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// Writer streams tokens into a new llm.c shard. The file appears under its
// final name only when Close succeeds: tokens go to a temporary file in the
// same directory, Close writes the header, fsyncs, renames and fsyncs the
// directory. A failed or aborted Writer leaves no file behind.
type Writer struct {
	path string
	raw  bool
	f    *os.File
	bw   *bufio.Writer
	n    int64
	buf  []byte
	done bool
}

// Create starts a shard that will be written to path. With
// WithFormat(FormatRaw) it writes a headerless nanoGPT .bin, which has no
// token limit.
func Create(path string, opts ...Option) (*Writer, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.format != FormatLLMC && o.format != FormatRaw {
		return nil, fmt.Errorf("create shard %s: %w: %v", path, ErrFormat, o.format)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create shard %s: %w", path, err)
	}
	w := &Writer{path: path, raw: o.format == FormatRaw, f: f, bw: bufio.NewWriterSize(f, 1<<20), buf: make([]byte, 0, 64<<10)}
	if !w.raw {
		if _, err := w.bw.Write(header(0)); err != nil {
			w.Abort()
			return nil, fmt.Errorf("create shard %s: %w", path, err)
		}
	}
	return w, nil
}

// Write appends tokens.
func (w *Writer) Write(tokens []uint16) error {
	if w.done {
		return fmt.Errorf("shard %s: %w", w.path, ErrClosed)
	}
	if !w.raw && w.n+int64(len(tokens)) > MaxTokens {
		return fmt.Errorf("shard %s: %w: %d tokens exceed the int32 header limit %d", w.path, ErrTooMany, w.n+int64(len(tokens)), int64(MaxTokens))
	}
	for len(tokens) > 0 {
		k := min(len(tokens), cap(w.buf)/2)
		b := w.buf[:0]
		for _, t := range tokens[:k] {
			b = binary.LittleEndian.AppendUint16(b, t)
		}
		if _, err := w.bw.Write(b); err != nil {
			return fmt.Errorf("write shard %s: %w", w.path, err)
		}
		w.n += int64(k)
		tokens = tokens[k:]
	}
	return nil
}

// WriteInts appends tokens given as ints, checking each is below vocabSize
// (at most MaxVocab). After an error part of ids may have been written;
// Abort the Writer.
func (w *Writer) WriteInts(ids []int, vocabSize int) error {
	if vocabSize < 1 || vocabSize > MaxVocab {
		return fmt.Errorf("shard %s: %w: %d (want 1..%d)", w.path, ErrVocabSize, vocabSize, MaxVocab)
	}
	var tmp [1024]uint16
	for len(ids) > 0 {
		k := min(len(ids), len(tmp))
		for i, id := range ids[:k] {
			if id < 0 || id >= vocabSize {
				return fmt.Errorf("shard %s: %w: token %d at position %d (vocabulary size %d)", w.path, ErrTokenRange, id, w.n+int64(i), vocabSize)
			}
			tmp[i] = uint16(id)
		}
		if err := w.Write(tmp[:k]); err != nil {
			return err
		}
		ids = ids[k:]
	}
	return nil
}

// Count returns the number of tokens written so far.
func (w *Writer) Count() int64 { return w.n }

// Path returns the final file name.
func (w *Writer) Path() string { return w.path }

// Close completes the shard: header (llm.c format), fsync, rename to the final name, fsync
// of the directory. After an error the temporary file is removed.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	err := w.finish()
	if err != nil {
		w.Abort()
		return fmt.Errorf("close shard %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) finish() error {
	w.done = true
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if !w.raw {
		if _, err := w.f.WriteAt(header(w.n), 0); err != nil {
			return err
		}
	}
	if err := w.f.Chmod(0o644); err != nil { // CreateTemp made it 0600
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f = nil
	if err := os.Rename(tmp, w.path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(w.path))
}

// Abort discards the shard and removes the temporary file. It is safe after
// Close (then it does nothing).
func (w *Writer) Abort() {
	w.done = true
	if w.f == nil {
		return
	}
	name := w.f.Name()
	w.f.Close()
	os.Remove(name)
	w.f = nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFile writes tokens as a complete llm.c shard at path (atomically, as
// a Writer does).
func WriteFile(path string, tokens []uint16) error {
	w, err := Create(path)
	if err != nil {
		return err
	}
	if err := w.Write(tokens); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}
