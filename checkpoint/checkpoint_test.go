package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeCheckpoint writes a checkpoint of step made of four files, two of
// them written by other "processes" (goroutines), and commits it unless
// commit is false.
func writeCheckpoint(t *testing.T, runDir string, step int64, commit bool) string {
	t.Helper()
	dir := Dir(runDir, step)
	errs := make(chan error, 4)
	for _, name := range []string{"model.safetensors", "part-0.bin", "part-1.bin", StateFile} {
		go func() {
			errs <- WriteFile(dir, name, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s of step %d\n", name, step)
				return err
			})
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := Commit(dir); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWriteCommitVerify(t *testing.T) {
	run := t.TempDir()
	dir := writeCheckpoint(t, run, 7, true)
	if filepath.Base(dir) != "step_00000007" || filepath.Base(filepath.Dir(dir)) != DirName {
		t.Fatalf("dir %s", dir)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"COMMIT", "model.safetensors", "part-0.bin", "part-1.bin", "state.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v (no temporaries left)", names, want)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 4 || files[0].Name != "model.safetensors" || len(files[0].SHA256) != 64 {
		t.Fatalf("Files = %v, %v", files, err)
	}
	got, step, err := Latest(run)
	if err != nil || got != dir || step != 7 {
		t.Fatalf("Latest = %s %d %v", got, step, err)
	}
}

func TestLatestSkipsBad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(dir string)
	}{
		{"no marker", func(dir string) { os.Remove(filepath.Join(dir, CommitFile)) }},
		{"truncated file", func(dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"flipped byte", func(dir string) {
			p := filepath.Join(dir, "part-1.bin")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		}},
		{"missing file", func(dir string) { os.Remove(filepath.Join(dir, StateFile)) }},
		{"bad marker", func(dir string) { os.WriteFile(filepath.Join(dir, CommitFile), []byte("xyz\n"), 0o644) }},
		{"marker escapes the dir", func(dir string) {
			os.WriteFile(filepath.Join(dir, CommitFile), []byte(strings.Repeat("0", 64)+"  ../x\n"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			writeCheckpoint(t, run, 100, true)
			bad := writeCheckpoint(t, run, 200, true)
			tc.spoil(bad)
			got, step, err := Latest(run)
			if err != nil || got != Dir(run, 100) || step != 100 {
				t.Fatalf("Latest = %s %d, %v; want step 100", got, step, err)
			}
			if err := Verify(bad); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrNotCommitted) {
				t.Fatalf("Verify(spoilt) = %v", err)
			}
		})
	}
	run := t.TempDir()
	if _, _, err := Latest(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty run: %v", err)
	}
	writeCheckpoint(t, run, 5, false)
	if _, _, err := Latest(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("only uncommitted: %v", err)
	}
}

func TestPrune(t *testing.T) {
	run := t.TempDir()
	for _, s := range []int64{10, 20, 30, 40, 50} {
		writeCheckpoint(t, run, s, s != 30 && s != 50) // 30: stale incomplete, 50: in progress
	}
	if err := Prune(run, 2); err != nil {
		t.Fatal(err)
	}
	steps, _ := Steps(run)
	if want := []int64{50, 40, 20}; !slices.Equal(steps, want) {
		t.Fatalf("after Prune(2): %v, want %v", steps, want)
	}
	if err := Prune(run, 0); err != nil {
		t.Fatal(err)
	}
	if steps, _ := Steps(run); len(steps) != 3 {
		t.Fatalf("Prune(0) deleted: %v", steps)
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"model.safetensors": true, "state.json": true, "vocab.json": true,
		"": false, ".": false, "..": false, "a/b": false, "COMMIT": false, ".tmp-x": false, "a\x00b": false,
	} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}
