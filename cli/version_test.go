package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// A release build is stamped with its version, commit and the commit's date (packaging/
// build.sh); support staff read them back from `fieldflash --version` to know which source a
// technician runs.
func TestVersionNamesTheCommitAndBuildDate(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, BuildDate = v, c, d }(Version, Commit, BuildDate)
	Version, Commit, BuildDate = "1.4.0", "3e262fd7d7624301bc8be802fe94d8ae2756285e", "2026-12-01T23:18:27Z"

	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out, errb bytes.Buffer
		if code := Main(args, nil, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		lines := strings.Split(out.String(), "\n")
		if lines[0] != "fieldflash 1.4.0" {
			t.Errorf("%v: first line %q; scripts read `fieldflash VERSION` from it", args, lines[0])
		}
		for _, want := range []string{"commit  3e262fd7d7624301bc8be802fe94d8ae2756285e", "built   2026-12-01T23:18:27Z", runtime.GOOS + "-" + runtime.GOARCH} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: no %q in\n%s", args, want, out.String())
			}
		}
	}

	var out bytes.Buffer
	if code := Main([]string{"version", "--json"}, nil, &out, &out); code != exitOK {
		t.Fatalf("version --json: exit %d: %s", code, out.String())
	}
	var b BuildInfo
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatalf("version --json: %v in %q", err, out.String())
	}
	if b.Version != "1.4.0" || b.Commit != Commit || b.BuildDate != BuildDate || b.Platform != runtime.GOOS+"-"+runtime.GOARCH {
		t.Errorf("version --json = %+v", b)
	}
}

// An unstamped build does not pretend to know its commit.
func TestUnstampedBuildSaysUnknown(t *testing.T) {
	defer func(c, d string) { Commit, BuildDate = c, d }(Commit, BuildDate)
	Commit, BuildDate = "", ""
	b := Build()
	if b.Commit == "" || b.BuildDate == "" {
		t.Errorf("Build() = %+v: commit and date must say unknown, or what the toolchain recorded", b)
	}
}
