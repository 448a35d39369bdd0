package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/cli/progress"
)

func init() {
	register(&command{name: "fetch", summary: "bring the vendor's newest releases into the cache while online", run: cmdFetch})
	register(&command{name: "bundle", summary: "make a bundle for offline use from what fetch brought", run: cmdBundle})
	register(&command{name: "remote", summary: "configure the mirrors (and TLS) of a repository for fetch", run: cmdRemote})
}

const fetchHelp = `
Refreshes the TUF metadata of a pinned repository from its mirrors (root rotation,
timestamp, snapshot, targets, delegations; every check is go-tuf's) and downloads the
newest release of each component for each --hardware ID into the cache under
$FIELDFLASH_HOME/cache. Downloads resume where they stopped (run the same command again),
are checked chunk by chunk, and move to the next mirror when one is down, slow or wrong.
Without --hardware only the metadata is refreshed and the releases on offer are listed.
What a fetch learns (a withdrawn release, a rotated key) also guards offline verification.

Configure the repository's mirrors first: fieldflash remote add NAME URL...
Then, for the site: fieldflash bundle --hardware ID

Exit codes: 0 done, 1 refused (every mirror served something that does not verify, or
nothing fits the hardware), 2 usage, 3 environment (no mirror reachable, no remote
configured, the cache not writable), 5 interrupted (run it again to resume).`

func cmdFetch(e *env, args []string) int {
	fs := newFlags(e, "fetch", "[--repository NAME] [--hardware ID]... [--json]", fetchHelp)
	repo := fs.String("repository", "", "the pinned repository to fetch (default: the only one with a remote)")
	var hardware multiFlag
	fs.Var(&hardware, "hardware", "a hardware `ID` whose newest releases to download (repeatable)")
	jsonOut := fs.Bool("json", false, "write events and the result as JSON lines (for scripts)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "fieldflash fetch: no arguments besides the options; e.g. `fieldflash fetch --hardware acme-gw-r2`")
		return exitUsage
	}
	s, err := app.OpenSession(false)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out := newFetchOutput(e, *jsonOut)
	res, err := s.Fetch(ctx, app.FetchRequest{Repository: *repo, Hardware: hardware}, out.event)
	if *jsonOut {
		doc := map[string]any{"ok": err == nil, "result": res}
		addError(doc, err)
		writeJSONLine(e.stdout, doc)
		return int(app.OnlineStatus(err))
	}
	if res != nil {
		printFetch(e, res, len(hardware) > 0)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "✘", app.Text(err.Error()))
		return int(app.OnlineStatus(err))
	}
	return exitOK
}

func addError(doc map[string]any, err error) {
	if err == nil {
		return
	}
	doc["code"] = app.ErrorCode(err)
	doc["error"] = err.Error()
	var fe *app.FetchError
	if errors.As(err, &fe) {
		doc["thing"], doc["reason"], doc["next"] = fe.Thing, fe.Reason, fe.Next
	}
}

// fetchOutput shows a fetch's events: a progress bar (or lines) for people, JSON lines
// for scripts. The downloads use the same printer as a flash's transfer.
type fetchOutput struct {
	e        *env
	json     bool
	renderer *progress.Renderer
}

func newFetchOutput(e *env, jsonOut bool) *fetchOutput {
	o := &fetchOutput{e: e, json: jsonOut}
	if !jsonOut {
		o.renderer = progress.New(e.stdout, progress.Auto)
	}
	return o
}

func (o *fetchOutput) event(ev app.FetchEvent) {
	if o.json {
		writeJSONLine(o.e.stdout, ev)
		return
	}
	msg := app.Text(ev.Message)
	ee := app.EngineEvent{Time: ev.Time, Step: "fetch", Bytes: ev.Bytes, Total: ev.Total, Rate: ev.Rate, ETA: ev.ETA}
	switch ev.Kind {
	case app.FetchMirror:
		ee.Kind, ee.Message = app.KindStepStart, msg+" from "+app.Text(ev.Mirror)
	case app.FetchMetadata:
		ee.Kind, ee.Message = app.KindStepDone, "trusted "+msg
	case app.FetchStart:
		ee.Step, ee.Kind, ee.Message = "download", app.KindStepStart, app.Text(ev.Target)
		if ev.Bytes > 0 {
			ee.Message += fmt.Sprintf(" (resuming at %s of %s)", progress.Bytes(ev.Bytes), progress.Bytes(ev.Total))
		}
	case app.FetchProgress:
		ee.Step, ee.Kind = "download", app.KindProgress
	case app.FetchDone:
		ee.Step, ee.Kind, ee.Message = "download", app.KindStepDone, app.Text(ev.Target)+" verified and cached"
	case app.FetchRetry:
		ee.Kind, ee.Message = app.KindRetry, app.Text(ev.Mirror)+": "+msg
	case app.FetchDropped:
		ee.Kind, ee.Message = app.KindRetry, "leaving "+app.Text(ev.Mirror)+": "+msg
	case app.FetchWarning:
		ee.Kind, ee.Message = app.KindHint, "⚠ "+msg
	default:
		return
	}
	o.renderer.Event(ee)
}

func printFetch(e *env, r *app.FetchResult, downloaded bool) {
	w := e.stdout
	fmt.Fprintf(w, "✔ %s: metadata from %s is trusted (root v%d, timestamp v%d expires %s, targets v%d)\n",
		app.Text(r.Repository), app.Text(r.Mirror), r.RootVersion, r.TimestampVersion, r.Expires.UTC().Format("2006-01-02 15:04 MST"), r.TargetsVersion)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  ⚠ %s\n", app.Text(warn))
	}
	for m, why := range r.Dropped {
		fmt.Fprintf(w, "  ⚠ mirror %s was left: %s\n", app.Text(m), app.Text(why))
	}
	if downloaded {
		var got int64
		for _, t := range r.Targets {
			got += t.Downloaded
		}
		fmt.Fprintf(w, "  in the cache (%s downloaded now):\n", progress.Bytes(got))
		for _, t := range r.Targets {
			how := "already cached"
			if t.Downloaded > 0 {
				how = "downloaded"
			}
			fmt.Fprintf(w, "    %-40s %s %s, counter %d, %s, %s\n", app.Text(t.Path), app.Text(t.Meta.Component), app.Text(t.Meta.Version), t.Meta.ReleaseCounter, progress.Bytes(t.Length), how)
		}
		if len(r.Targets) > 0 {
			fmt.Fprintf(w, "  next: `fieldflash bundle --repository %s --hardware %s` makes a bundle for offline use\n", app.Text(r.Repository), app.Text(firstHardware(r)))
		}
		return
	}
	fmt.Fprintf(w, "  %s on offer, for hardware %s\n", plural(len(r.Available), "release"), app.Text(strings.Join(r.HardwareIDs, ", ")))
	for _, rel := range r.Available {
		fmt.Fprintf(w, "    %-40s %s %s for %s, %s\n", app.Text(rel.Path), app.Text(rel.Meta.Component), app.Text(rel.Meta.Version), app.Text(strings.Join(rel.Meta.HardwareIDs, ", ")), progress.Bytes(rel.Length))
	}
	fmt.Fprintln(w, "  next: `fieldflash fetch --hardware ID` downloads the newest for a device")
}

func firstHardware(r *app.FetchResult) string {
	for _, t := range r.Targets {
		if len(t.Meta.HardwareIDs) > 0 {
			return t.Meta.HardwareIDs[0]
		}
	}
	return "ID"
}

const bundleHelp = `
Assembles a standard .fwb bundle, offline, from the metadata and releases a fetch brought:
the root chain from the pinned root, timestamp, snapshot, targets and delegated roles, and
the newest release of each component that fits --hardware (or the --target paths given).
Before it is written it is verified as a laptop with only the pinned roots would, so
` + "`fieldflash verify`" + ` accepts it anywhere those roots are pinned.

Exit codes: 0 written, 1 refused (nothing fetched for that hardware, the fetched metadata
expired: fetch again), 2 usage, 3 environment (the cache or --out could not be used).`

func cmdBundle(e *env, args []string) int {
	fs := newFlags(e, "bundle", "--hardware ID [--repository NAME] [--target PATH]... [--out FILE.fwb] [--json]", bundleHelp)
	hardware := fs.String("hardware", "", "the device's hardware `ID` (required)")
	repo := fs.String("repository", "", "the repository (default: the only one fetched)")
	var targets multiFlag
	fs.Var(&targets, "target", "carry this target `PATH` instead of the newest per component (repeatable)")
	outFile := fs.String("out", "", "the bundle to write (default: REPOSITORY-HARDWARE.fwb here)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if *hardware == "" || fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "fieldflash bundle: give the device's hardware id, e.g. `fieldflash bundle --hardware acme-gw-r2`")
		return exitUsage
	}
	s, err := app.OpenSession(false)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	b, err := s.Bundle(app.BundleRequest{Repository: *repo, Hardware: *hardware, Paths: targets, Out: *outFile})
	if *jsonOut {
		doc := map[string]any{"ok": err == nil, "bundle": b}
		addError(doc, err)
		writeJSON(e.stdout, doc)
		return int(app.OnlineStatus(err))
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "✘", app.Text(err.Error()))
		return int(app.OnlineStatus(err))
	}
	fmt.Fprintf(e.stdout, "✔ %s written (%s) and verified: repository %s, root v%d\n", b.File, progress.Bytes(b.Size), app.Text(b.Verified.Repository), b.Verified.RootVersion)
	for _, t := range b.Targets {
		fmt.Fprintf(e.stdout, "    %-40s %s %s, counter %d, %s\n", app.Text(t.Path), app.Text(t.Meta.Component), app.Text(t.Meta.Version), t.Meta.ReleaseCounter, progress.Bytes(t.Length))
	}
	fmt.Fprintf(e.stdout, "  digest %s\n", b.Verified.Digest)
	return exitOK
}

const remoteHelp = `
Says where fetch finds a pinned repository online: one or more mirror URLs (the base of
the repository, with metadata/ and targets/ below it), tried in order. Where the vendor's
servers demand it, a client certificate and key (PEM) authenticate this laptop, and the
server CA (PEM) becomes the only authority trusted for those servers.

  fieldflash remote add NAME URL... [--client-cert CERT.pem --client-key KEY.pem] [--server-ca CA.pem]
  fieldflash remote list [--json]
  fieldflash remote remove NAME

NAME is the pinned root's name (fieldflash trust list). Exit codes: 0 done, 1 refused
(a bad URL, a certificate that does not load), 2 usage, 3 $FIELDFLASH_HOME not writable.`

func cmdRemote(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		out := e.stdout
		if len(args) == 0 {
			out = e.stderr
		}
		fmt.Fprintf(out, "Usage: fieldflash remote add|list|remove ...\n%s\n", remoteHelp)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	s, err := app.OpenSession(false)
	if err != nil {
		return reportEnv(e, false, err)
	}
	switch args[0] {
	case "add":
		fs := newFlags(e, "remote add", "NAME URL... [--client-cert F --client-key F] [--server-ca F]", "Configure a repository's mirrors.")
		cert := fs.String("client-cert", "", "client certificate `PEM` file, for servers that demand one")
		key := fs.String("client-key", "", "its private key `PEM` file")
		ca := fs.String("server-ca", "", "the CA `PEM` file the servers' certificates must chain to (replaces the system's)")
		if code, stop := parse(e, fs, args[1:]); stop {
			return code
		}
		if fs.NArg() < 2 {
			fmt.Fprintln(e.stderr, "fieldflash remote add: give the repository name and at least one mirror URL")
			return exitUsage
		}
		r := app.Remote{Repository: fs.Arg(0), Mirrors: fs.Args()[1:], ClientCert: *cert, ClientKey: *key, ServerCA: *ca}
		if err := s.SaveRemote(r); err != nil {
			fmt.Fprintln(e.stderr, "✘", err)
			return exitRefused
		}
		fmt.Fprintf(e.stdout, "✔ %s: %d mirror(s); `fieldflash fetch --repository %s` uses them\n", r.Repository, len(r.Mirrors), r.Repository)
		return exitOK
	case "list":
		fs := newFlags(e, "remote list", "[--json]", "List the configured repositories and their mirrors.")
		jsonOut := fs.Bool("json", false, "print as JSON")
		if code, stop := parse(e, fs, args[1:]); stop {
			return code
		}
		list, err := s.Remotes()
		if err != nil {
			return reportEnv(e, *jsonOut, err)
		}
		if *jsonOut {
			if list == nil {
				list = []app.Remote{}
			}
			writeJSON(e.stdout, list)
			return exitOK
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "No repository has mirrors configured: `fieldflash remote add NAME URL` does.")
		}
		for _, r := range list {
			fmt.Fprintf(e.stdout, "%s\n", r.Repository)
			for _, m := range r.Mirrors {
				fmt.Fprintf(e.stdout, "  %s\n", m)
			}
			if r.ClientCert != "" {
				fmt.Fprintf(e.stdout, "  client certificate %s\n", r.ClientCert)
			}
			if r.ServerCA != "" {
				fmt.Fprintf(e.stdout, "  server CA %s\n", r.ServerCA)
			}
		}
		return exitOK
	case "remove":
		fs := newFlags(e, "remote remove", "NAME", "Forget a repository's mirrors (its root stays pinned).")
		if code, stop := parse(e, fs, args[1:]); stop {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(e.stderr, "fieldflash remote remove: give the repository name")
			return exitUsage
		}
		if err := s.RemoveRemote(fs.Arg(0)); err != nil {
			fmt.Fprintln(e.stderr, "✘", err)
			return exitRefused
		}
		fmt.Fprintf(e.stdout, "✔ %s: mirrors forgotten\n", fs.Arg(0))
		return exitOK
	}
	fmt.Fprintf(e.stderr, "fieldflash remote: unknown subcommand %q; use add, list or remove\n", args[0])
	return exitUsage
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
