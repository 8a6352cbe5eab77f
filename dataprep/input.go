package dataprep

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Input is one input file of Prepare.
type Input struct {
	Path   string
	Size   int64  // bytes of the file as stored, the unit of progress
	Format Format // how its bytes become documents; nil means Text
}

// Format reads the documents of one input from r, the bytes of the file as
// stored, and calls doc with the text of each, in order, from the calling
// goroutine; doc reads the text to its end. An error from doc is returned
// as is (a Format adds its own context, such as a line number, only to its
// own errors).
//
// A Format for compressed files wraps another (gzip: decompress r, pass
// the result on); one for JSON lines calls doc once a line with the text
// field.
type Format func(r io.Reader, doc func(text io.Reader) error) error

// Text is the Format of a plain text file: the whole file is one document.
func Text(r io.Reader, doc func(text io.Reader) error) error { return doc(r) }

// MaxLineBytes bounds one line of a JSON-lines file.
const MaxLineBytes = 64 << 20

// JSONLines is the Format of a JSON-lines file: each non-empty line is a
// JSON object whose string field field is one document.
func JSONLines(field string) Format {
	return func(r io.Reader, doc func(text io.Reader) error) error {
		br := bufio.NewReaderSize(r, 1<<20)
		for n := 1; ; n++ {
			line, err := readLine(br)
			if err == io.EOF && len(line) == 0 {
				return nil
			}
			if err != nil && err != io.EOF {
				return fmt.Errorf("line %d: %w", n, err)
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(line, &obj); err != nil {
				return fmt.Errorf("line %d: not a JSON object: %w", n, err)
			}
			raw, ok := obj[field]
			if !ok {
				return fmt.Errorf("line %d: no field %q (choose another with --jsonl-field; the line has %s)", n, field, strings.Join(slices.Sorted(maps.Keys(obj)), ", "))
			}
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				return fmt.Errorf("line %d: field %q is not a string", n, field)
			}
			if err := doc(strings.NewReader(text)); err != nil {
				return err
			}
		}
	}
}

// readLine returns the next line without its newline, at most MaxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(line)+len(part) > MaxLineBytes {
			return nil, fmt.Errorf("longer than %d bytes", MaxLineBytes)
		}
		line = append(line, part...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), err
	}
}

// Gzip wraps a Format for a gzip-compressed file (several concatenated
// gzip members are read as one stream, like gunzip does).
func Gzip(inner Format) Format {
	return func(r io.Reader, doc func(text io.Reader) error) error {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		err = inner(zr, doc)
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) { // a damaged file, seen while reading
			return fmt.Errorf("gzip: %w", err)
		}
		return err
	}
}

// InputOptions say how Inputs reads JSON lines.
type InputOptions struct {
	// JSONLField is the field of a JSON-lines object that holds the
	// text; "" means "text".
	JSONLField string
}

// Inputs returns the inputs for the given paths, in order, with the
// default options (InputOptions.Inputs).
func Inputs(paths ...string) ([]Input, error) { return InputOptions{}.Inputs(paths...) }

// Inputs returns the inputs for the given paths, in order. A path's name
// chooses its Format: .jsonl (or .ndjson) is JSON lines, anything else
// plain text, each optionally compressed (.gz). A directory stands for the
// files under it, sorted by path, with a name Inputs recognises (.txt,
// .text, .md, .jsonl, .ndjson, each also .gz); hidden files and
// directories are skipped. It is an error when a path names nothing to
// read.
func (o InputOptions) Inputs(paths ...string) ([]Input, error) {
	field := o.JSONLField
	if field == "" {
		field = "text"
	}
	var ins []Input
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if st.IsDir() {
			found, err := dirInputs(p, field)
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("input %s: a directory without .txt, .md, .jsonl or .ndjson files (optionally .gz)", p)
			}
			ins = append(ins, found...)
			continue
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("input %s: not a regular file", p)
		}
		f, _ := formatOf(p, field)
		ins = append(ins, Input{Path: p, Size: st.Size(), Format: f})
	}
	return ins, nil
}

func dirInputs(dir, field string) ([]Input, error) {
	var ins []Input
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, known := formatOf(p, field)
		if !known {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		ins = append(ins, Input{Path: p, Size: fi.Size(), Format: f})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", dir, err)
	}
	return ins, nil // WalkDir visits in lexical order
}

// formatOf chooses the Format of a file by its name; known reports whether
// the name is one a directory's files are taken by.
func formatOf(path, field string) (f Format, known bool) {
	name := strings.ToLower(filepath.Base(path))
	gz := strings.HasSuffix(name, ".gz")
	name = strings.TrimSuffix(name, ".gz")
	f = Text
	switch filepath.Ext(name) {
	case ".jsonl", ".ndjson":
		f, known = JSONLines(field), true
	case ".txt", ".text", ".md":
		known = true
	}
	if gz {
		f = Gzip(f)
	}
	return f, known
}
