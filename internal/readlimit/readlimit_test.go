package readlimit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o644)
	if b, err := File(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	if _, err := File(p, 4); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("over the limit: %v, want an error naming the file", err)
	}
}
