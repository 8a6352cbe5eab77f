package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersionString(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}}
	tail := ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	for _, tc := range []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"nothing known", "", "", nil, "dev (commit unknown" + tail},
		{"vcs stamp", "", "", stamped, "dev (commit 0123456789abcdef0123456789abcdef01234567+modified" + tail},
		{"ldflags win", "v1.2.0", "feedbeef", stamped, "v1.2.0 (commit feedbeef+modified" + tail},
		{"go install", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, "v0.3.1 (commit unknown" + tail},
	} {
		version, commit = tc.version, tc.commit
		got := versionString(tc.info, tc.info != nil)
		version, commit = "", ""
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionFlag builds the binary as the Makefile does and runs --version.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ringtrain")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=abc123", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^ringtrain v9\.9\.9-test \(commit abc123(\+modified)?, go\S+ \w+/\w+\)\n$`).Match(out) {
		t.Fatalf("--version printed %q", out)
	}
}
