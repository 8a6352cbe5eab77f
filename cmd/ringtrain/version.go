package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time by the Makefile and
// deploy/build.sh: -ldflags "-X main.version=... -X main.commit=...".
var version, commit string

// versionString is what `ringtrain --version` prints after "ringtrain ":
// the version, the commit it was built from (with "+modified" when the work
// tree had changes) and the Go toolchain. The commit comes from the linker
// flag or else from the VCS stamp go build adds (vcs.revision,
// vcs.modified), which -buildvcs=false or a build outside git leaves out.
func versionString(info *debug.BuildInfo, ok bool) string {
	v, c, modified := version, commit, false
	if ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version // go install module@version
		}
	}
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	} else if modified {
		c += "+modified"
	}
	return fmt.Sprintf("%s (commit %s, %s %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func init() {
	info, ok := debug.ReadBuildInfo()
	rootCmd.Version = versionString(info, ok)
	rootCmd.SetVersionTemplate("ringtrain {{.Version}}\n")
}
