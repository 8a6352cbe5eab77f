// Package readlimit reads files that are parsed whole (job files, tokenizer
// files, config.json) without trusting their size: a file larger than the
// caller's limit is an error naming it, not an allocation of its size.
package readlimit

import (
	"fmt"
	"io"
	"os"
)

// File reads the file at path, of at most limit bytes.
func File(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
