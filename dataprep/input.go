package dataprep

import (
	"fmt"
	"io"
	"os"
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

// Inputs returns the inputs for the given paths, in order. Each must be a
// regular file and is read as Text. This is where a path's name chooses
// its Format and where a directory would be expanded into its files.
func Inputs(paths ...string) ([]Input, error) {
	var ins []Input
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("input %s: not a regular file", p)
		}
		ins = append(ins, Input{Path: p, Size: st.Size(), Format: Text})
	}
	return ins, nil
}
