package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "trust", summary: "pin, list or unpin the roots bundles must chain to", run: cmdTrust})
}

const trustHelp = `
Nothing is trusted unless pinned. Roots come from this build (embedded) or from
"fieldflash trust add". Compare the key ids and fingerprints shown with the ones your
vendor publishes before you confirm: a key id is the SHA-256 of the key's canonical JSON
(checked), a fingerprint the SHA-256 of its DER public key (openssl pkey -pubin -outform
DER | sha256sum).

  fieldflash trust add ROOT.json [--name NAME] [--yes]
  fieldflash trust list [--json]
  fieldflash trust remove NAME

Exit codes: 0 done, 1 refused (not confirmed, invalid root, already pinned),
2 usage, 3 $FIELDFLASH_HOME could not be used.`

func cmdTrust(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		out := e.stdout
		if len(args) == 0 {
			out = e.stderr
		}
		fmt.Fprintf(out, "Usage: fieldflash trust add|list|remove ...\n%s\n", trustHelp)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, false, err)
	}
	store, err := app.OpenTrustStore(home)
	if err != nil {
		return reportEnv(e, false, err)
	}
	switch args[0] {
	case "add":
		return trustAdd(e, store, args[1:])
	case "list":
		return trustList(e, store, args[1:])
	case "remove":
		return trustRemove(e, store, args[1:])
	}
	app.Fprintf(e.stderr, "fieldflash trust: unknown subcommand %q; use add, list or remove\n", args[0])
	return exitUsage
}

func trustAdd(e *env, store *app.TrustStore, args []string) int {
	fs := newFlags(e, "trust add", "ROOT.json [--name NAME] [--yes]", "Pin a repository's root after showing its keys.")
	name := fs.String("name", "", "repository name, kept as written (default: the name the root carries, else the file name; required for a standard root.json or N.root.json)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (for scripts)")
	jsonOut := fs.Bool("json", false, "print the pinned root's summary as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		app.Fprintln(e.stderr, "fieldflash trust add: give exactly one root.json")
		return exitUsage
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return reportEnv(e, *jsonOut, fmt.Errorf("root %s: %v", path, err))
	}
	sum, err := app.InspectRoot(data, *name)
	if err != nil {
		app.Fprintf(e.stderr, "✘ root %s: %v\n", path, err)
		return exitRefused
	}
	if sum.Name == "" {
		if sum.Name, err = app.NameFromFile(path); err != nil {
			app.Fprintf(e.stderr, "✘ root %s: %v\n", path, err)
			return exitRefused
		}
	}
	if !*jsonOut {
		printRoot(e, sum)
	}
	if !*yes {
		app.Fprintf(e.stdout, "Pin this root as %q? Only if the key ids and fingerprints match what the vendor published. [y/N] ", sum.Name)
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			app.Fprintln(e.stderr, "not pinned: not confirmed (pass --yes in scripts)")
			return exitRefused
		}
	}
	if err := store.Add(sum.Name, data); err != nil {
		app.Fprintln(e.stderr, "✘", err)
		return exitRefused
	}
	if *jsonOut {
		writeJSON(e.stdout, sum)
	} else {
		app.Fprintf(e.stdout, "✔ pinned %q (root v%d)\n", sum.Name, sum.Version)
	}
	return exitOK
}

func printRoot(e *env, s *app.RootSummary) {
	src := ""
	if s.Source != "" {
		src = " [" + string(s.Source) + "]"
	}
	app.Fprintf(e.stdout, "%s%s  root v%d, expires %s\n", s.Name, src, s.Version, s.Expires.UTC().Format("2006-01-02"))
	keys := map[string]app.KeySummary{}
	for _, k := range s.Keys {
		keys[k.ID] = k
	}
	for _, r := range s.Roles {
		app.Fprintf(e.stdout, "  %-10s threshold %d of %d\n", r.Role, r.Threshold, len(r.KeyIDs))
		for _, id := range r.KeyIDs {
			k := keys[id]
			app.Fprintf(e.stdout, "    key id       %s  %s\n", id, k.Type)
			app.Fprintf(e.stdout, "    fingerprint  %s\n", k.Fingerprint)
		}
	}
}

func trustList(e *env, store *app.TrustStore, args []string) int {
	fs := newFlags(e, "trust list", "[--json]", "List pinned roots with their key ids.")
	jsonOut := fs.Bool("json", false, "print as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	list, err := store.List()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		if list == nil {
			list = []app.RootSummary{}
		}
		writeJSON(e.stdout, list)
		return exitOK
	}
	if len(list) == 0 {
		app.Fprintln(e.stdout, "No roots are pinned: no bundle will verify. Pin your vendor's root with `fieldflash trust add ROOT.json`.")
		return exitOK
	}
	for i := range list {
		printRoot(e, &list[i])
	}
	return exitOK
}

func trustRemove(e *env, store *app.TrustStore, args []string) int {
	fs := newFlags(e, "trust remove", "NAME", "Unpin a root you added.")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		app.Fprintln(e.stderr, "fieldflash trust remove: give the repository name (see `fieldflash trust list`)")
		return exitUsage
	}
	if err := store.Remove(fs.Arg(0)); err != nil {
		app.Fprintln(e.stderr, "✘", err)
		return exitRefused
	}
	app.Fprintf(e.stdout, "✔ unpinned %q\n", fs.Arg(0))
	return exitOK
}
