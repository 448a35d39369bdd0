package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/cli/progress"
)

func init() {
	register(&command{name: "self-update", summary: "update fieldflash itself through the vendor's trust chain, or roll back", run: cmdSelfUpdate})
}

// ReleaseCounter is this build's release counter, set at build time with -ldflags
// "-X github.com/fieldflash/fieldflash/cli.ReleaseCounter=N": self-update never installs a
// build with a lower one.
var ReleaseCounter = "0"

// Both faces (this CLI and the window) learn the running build from here: ldflags set
// Version and ReleaseCounter before init runs.
func init() {
	counter, err := strconv.ParseUint(ReleaseCounter, 10, 64)
	if err != nil {
		counter = 0
	}
	app.SetBuild(app.Build{Version: Version, Counter: counter})
}

const selfUpdateHelp = `
Finds a newer build of fieldflash for this platform (` + "`fieldflash version`" + ` shows the
running one) among the targets of the vendor's repository (online, as fetch does) or in a
bundle given with --from (offline, e.g. from a USB stick), verifies it as every bundle is
verified, shows its version and release notes, and asks before it replaces the executable.
The current executable is kept beside it; --rollback puts it back. Builds that are older
(by version or release counter) or do not verify are refused, and nothing is replaced while
a flash is unfinished.

Exit codes: 0 updated, up to date, or --check done; 1 refused (older, unverified, not
confirmed, a flash unfinished); 2 usage; 3 environment (offline, the executable not
writable); 5 interrupted.`

func cmdSelfUpdate(e *env, args []string) int {
	fs := newFlags(e, "self-update", "[--check] [--from FILE.fwb] [--rollback] [--repository NAME] [--yes] [--json]", selfUpdateHelp)
	check := fs.Bool("check", false, "only say whether a newer build is available")
	from := fs.String("from", "", "take the update from this bundle `FILE.fwb` instead of the vendor's repository")
	rollback := fs.Bool("rollback", false, "put back the build that the last update replaced")
	repo := fs.String("repository", "", "the repository to look in (default: the only one with a remote)")
	yes := fs.Bool("yes", false, "do not ask before installing (for scripts; it is still refused when older or unverified)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 || (*rollback && (*check || *from != "")) {
		fmt.Fprintln(e.stderr, "fieldflash self-update: use --check, --from FILE.fwb or --rollback (the last alone)")
		return exitUsage
	}
	current := app.RunningBuild()
	s, err := app.OpenSession(false)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	fail := func(err error) int {
		if *jsonOut {
			doc := map[string]any{"ok": false}
			addError(doc, err)
			writeJSON(e.stdout, doc)
		} else {
			fmt.Fprintln(e.stderr, "✘", app.Text(err.Error()))
		}
		return int(app.OnlineStatus(err))
	}

	if *rollback {
		if !*yes && !confirm(e, "Put back the fieldflash build that the last update replaced?") {
			fmt.Fprintln(e.stderr, "not rolled back: not confirmed (pass --yes in scripts)")
			return exitRefused
		}
		done, err := s.RollbackSelfUpdate(current)
		if err != nil {
			return fail(err)
		}
		if *jsonOut {
			writeJSON(e.stdout, map[string]any{"ok": true, "rolled_back": done})
		} else {
			fmt.Fprintf(e.stdout, "✔ fieldflash rolled back from %s to %s (%s); the build rolled back from is kept at %s\n", done.From.Version, done.To.Version, done.Executable, done.Previous)
		}
		return exitOK
	}

	var offer *app.UpdateOffer
	if *from != "" {
		offer, err = s.SelfUpdateFrom(*from, current)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		var out *fetchOutput
		if !*jsonOut {
			out = newFetchOutput(&env{stdout: e.stderr, stderr: e.stderr}, false)
		}
		offer, err = s.CheckSelfUpdate(ctx, current, *repo, func(ev app.FetchEvent) {
			if out != nil {
				out.event(ev)
			}
		})
	}
	if err != nil {
		return fail(err)
	}
	if !*jsonOut {
		printOffer(e, offer)
	}
	if *check || !offer.Newer {
		if *jsonOut {
			writeJSON(e.stdout, map[string]any{"ok": true, "offer": offer})
		}
		if !offer.Newer && *from != "" && !*check {
			// A bundle given on purpose that cannot be installed is a refusal.
			return exitRefused
		}
		return exitOK
	}
	if !*yes && !confirm(e, fmt.Sprintf("Install fieldflash %s now? The running %s is kept for `fieldflash self-update --rollback`.", app.Text(offer.Version()), current.Version)) {
		fmt.Fprintln(e.stderr, "not installed: not confirmed (pass --yes in scripts)")
		return exitRefused
	}
	done, err := s.ApplySelfUpdate(offer, current)
	if err != nil {
		return fail(err)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": true, "offer": offer, "applied": done})
	} else {
		fmt.Fprintf(e.stdout, "✔ fieldflash updated from %s to %s (%s); the previous build is kept at %s\n", done.From.Version, done.To.Version, done.Executable, done.Previous)
	}
	return exitOK
}

func printOffer(e *env, o *app.UpdateOffer) {
	t := o.Target
	fmt.Fprintf(e.stdout, "fieldflash %s (release counter %d, %s) for %s, from %s\n", app.Text(t.Meta.Version), t.Meta.ReleaseCounter,
		progress.Bytes(t.Length), app.Platform(), app.Text(o.Bundle))
	fmt.Fprintf(e.stdout, "  running %s (release counter %d)\n", o.Current.Version, o.Current.Counter)
	if notes := strings.TrimSpace(t.Meta.ReleaseNotes); notes != "" {
		fmt.Fprintln(e.stdout, "  release notes:")
		for _, line := range strings.Split(notes, "\n") {
			app.Fprintf(e.stdout, "    %s\n", line)
		}
	}
	if len(t.Meta.Advisories) > 0 {
		fmt.Fprintf(e.stdout, "  fixes advisories %s\n", app.Text(strings.Join(t.Meta.Advisories, ", ")))
	}
	if o.Newer {
		fmt.Fprintln(e.stdout, "  a newer build: it verified against the vendor's pinned root")
	} else {
		fmt.Fprintf(e.stdout, "  not installed: %s\n", app.Text(o.Why))
	}
}

func confirm(e *env, question string) bool {
	fmt.Fprintf(e.stdout, "%s [y/N] ", question)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
