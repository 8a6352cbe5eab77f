package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// IsDir reports whether dir holds the files of a tokenizer (vocab.json and
// merges.txt, or tokenizer.json).
func IsDir(dir string) bool {
	_, err := Files(dir)
	return err == nil
}

// Files lists the tokenizer files of dir that Load reads: vocab.json,
// merges.txt and, when present, special_tokens.json; or tokenizer.json
// alone. These are the files to copy to take a tokenizer along (Copy).
func Files(dir string) ([]string, error) {
	if p, ok := jsonForm(dir); ok && filepath.Dir(p) == filepath.Clean(dir) {
		return []string{JSONFile}, nil
	}
	names := []string{VocabFile, MergesFile}
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a tokenizer directory (no %s)", dir, n)
		}
	}
	switch _, err := os.Stat(filepath.Join(dir, SpecialFile)); {
	case err == nil:
		names = append(names, SpecialFile)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return names, nil
}

// Copy copies the tokenizer files of src (Files) into dst, creating dst if
// needed; each file is replaced atomically.
func Copy(dst, src string) error {
	names, err := Files(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dst, n), b); err != nil {
			return err
		}
	}
	return nil
}
