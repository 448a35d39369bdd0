// Package buildinfo says which build a binary is: the version, commit and commit date a
// release build stamps with -ldflags -X, else what the Go toolchain recorded (the module
// version of `go install module@vX.Y.Z`, the revision and commit time of a `go build` in a
// git checkout). fieldflash (package cli) and fieldflash-release both use it.
package buildinfo

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Go        string `json:"go"`
	Platform  string `json:"platform"` // GOOS-GOARCH, the hardware id of fieldflash's own release targets
}

// pseudoVersion matches the versions Go makes up for untagged commits
// (v0.0.0-20261201231827-3e262fd7d762): they are not releases.
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}`)

// Resolve fills what a build did not stamp ("dev" and "" are unstamped) from the
// toolchain's record; what is still unknown says "unknown".
func Resolve(version, commit, date string) Info {
	b := Info{Version: version, Commit: commit, BuildDate: date, Go: runtime.Version(),
		Platform: runtime.GOOS + "-" + runtime.GOARCH}
	if b.Version == "" {
		b.Version = "dev"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "dev" && strings.HasPrefix(bi.Main.Version, "v") &&
			!strings.Contains(bi.Main.Version, "+dirty") && !pseudoVersion.MatchString(bi.Main.Version) {
			b.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		var revision, modified, when string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			case "vcs.time":
				when = s.Value
			}
		}
		if b.Commit == "" && revision != "" {
			b.Commit = revision
			if modified == "true" {
				b.Commit += "-dirty"
			}
		}
		if b.BuildDate == "" {
			b.BuildDate = when
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.BuildDate == "" {
		b.BuildDate = "unknown"
	}
	return b
}
