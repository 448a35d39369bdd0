package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/fieldflash/fieldflash/internal/buildinfo"
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
type BuildInfo = buildinfo.Info

// Build says which build this is: what -ldflags stamped, else what the Go toolchain
// recorded (internal/buildinfo).
func Build() BuildInfo { return buildinfo.Resolve(Version, Commit, BuildDate) }

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
