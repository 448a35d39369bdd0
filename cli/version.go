package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Commit and BuildDate say which source a build came from and when that source was
// committed. A release build (`make release`, packaging/build.sh) stamps them with
// -ldflags "-X github.com/fieldflash/fieldflash/cli.Commit=... -X ...cli.BuildDate=...",
// and the date is the commit's time (SOURCE_DATE_EPOCH), never the time of the build:
// two builds of one commit must be byte-identical (docs/packaging.md).
var (
	Commit    = ""
	BuildDate = ""
)

// BuildInfo is what `fieldflash version` prints: which build this is.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Go        string `json:"go"`
	Platform  string `json:"platform"` // GOOS-GOARCH, the hardware id of fieldflash's own release targets
}

// pseudoVersion matches the versions Go makes up for untagged commits
// (v0.0.0-20261201231827-3e262fd7d762): they are not releases.
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}`)

// Build says which build this is. What -ldflags stamped comes first; an unstamped build
// falls back on what the Go toolchain recorded: the module version of `go install
// github.com/fieldflash/fieldflash@v1.4.0`, and the revision and commit time of a `go
// build` in a git checkout.
func Build() BuildInfo {
	b := BuildInfo{Version: Version, Commit: Commit, BuildDate: BuildDate, Go: runtime.Version(),
		Platform: runtime.GOOS + "-" + runtime.GOARCH}
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

// printVersion is `fieldflash version [--json]` and `fieldflash --version`. The first
// line stays "fieldflash VERSION", as before, for scripts that read only it.
func printVersion(w io.Writer, args []string) int {
	b := Build()
	for _, a := range args {
		switch a {
		case "--json", "-json":
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(b); err != nil {
				return exitEnv
			}
			return exitOK
		}
	}
	fmt.Fprintf(w, "fieldflash %s\n  commit  %s\n  built   %s\n  go      %s %s\n", b.Version, b.Commit, b.BuildDate, b.Go, b.Platform)
	return exitOK
}
