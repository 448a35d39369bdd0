// Command fieldflash-release is the release engineers' tool: it keeps a vendor's TUF
// repository (keys, metadata, payloads) and makes the signed firmware bundles (.fwb) that
// fieldflash verifies offline. docs/release-tool.md is its reference; package
// verify/release holds the operations.
package main

import (
	"encoding/json"
	"github.com/fieldflash/fieldflash/internal/buildinfo"
	"github.com/fieldflash/fieldflash/verify/untrusted"

	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes, as docs/release-tool.md lists them.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	summary string
	run     func(args []string, out io.Writer) error
}

var commands = map[string]command{
	"keygen":      {"make a key pair: encrypted PKCS#8 private key and SPKI public key", cmdKeygen},
	"fingerprint": {"print the TUF key id of key files", cmdFingerprint},
	"init":        {"make a new repository: root v1 and an empty targets role", cmdInit},
	"delegate":    {"delegate target paths to a role with its own keys", cmdDelegate},
	"add-target":  {"add a payload with its signed custom metadata", cmdAddTarget},
	"withdraw":    {"remove a target (the new list revokes it)", cmdWithdraw},
	"sign":        {"add signatures to a role's metadata in place", cmdSign},
	"merge":       {"take signatures from copies signed elsewhere", cmdMerge},
	"status":      {"show versions, expiry and signatures of every role", cmdStatus},
	"rotate-root": {"change keys or threshold of a top-level role (new root version)", cmdRotateRoot},
	"revoke-key":  {"remove a key from a role", cmdRevokeKey},
	"bump-expiry": {"set a role's expiry", cmdBumpExpiry},
	"snapshot":    {"re-make (and sign) snapshot.json from the targets roles", cmdSnapshot},
	"timestamp":   {"re-make (and sign) timestamp.json from snapshot.json", cmdTimestamp},
	"publish":     {"snapshot + timestamp + check, in one step", cmdPublish},
	"bundle":      {"write a .fwb bundle", cmdBundle},
	"inspect":     {"list what a .fwb bundle holds, without trusting it", cmdInspect},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// version, commit and buildDate are stamped by a release build (packaging/build.sh:
// -ldflags "-X main.version=... -X main.commit=... -X main.buildDate=..."); an unstamped
// build reports what the Go toolchain recorded.
var version, commit, buildDate string

func printVersion(w io.Writer, args []string) int {
	b := buildinfo.Resolve(version, commit, buildDate)
	for _, a := range args {
		switch a {
		case "--json", "-json":
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if enc.Encode(b) != nil {
				return exitError
			}
			return exitOK
		default:
			fmt.Fprintf(w, "fieldflash-release version: unknown flag %q (it takes --json)\n", a)
			return exitUsage
		}
	}
	fmt.Fprintf(w, "fieldflash-release %s\n  commit  %s\n  built   %s\n  go      %s %s\n", b.Version, b.Commit, b.BuildDate, b.Go, b.Platform)
	return exitOK
}

func run(args []string, out, errOut io.Writer) int {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version") {
		return printVersion(out, args[1:])
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		mainUsage(out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "fieldflash-release: unknown command %q; `fieldflash-release --help` lists them\n", args[0])
		return exitUsage
	}
	err := c.run(args[1:], out)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		untrusted.Fprintf(errOut, "fieldflash-release %s: %v (see `fieldflash-release %s --help`)\n", args[0], err, args[0])
		return exitUsage
	default:
		untrusted.Fprintf(errOut, "fieldflash-release %s: %v\n", args[0], err)
		return exitError
	}
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `fieldflash-release keeps a TUF repository of firmware and makes signed bundles.

usage: fieldflash-release COMMAND [flags]

commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Every command takes --repo DIR (default $FIELDFLASH_REPO, else the current directory) and
--help. "fieldflash-release version [--json]" (or --version) says which build this is. Passphrases come from $FIELDFLASH_PASSPHRASE or a terminal prompt.
Exit codes: 0 ok, 1 error, 2 usage. Reference: docs/release-tool.md.
`)
}

// list is a flag that may be repeated and takes comma-separated values.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// flags makes a command's flag set with --repo and a usage text.
func flags(name, usage string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := os.Getenv("FIELDFLASH_REPO")
	if def == "" {
		def = "."
	}
	repo := fs.String("repo", def, "repository `DIR`")
	fs.Usage = func() {
		o := fs.Output()
		fmt.Fprintf(o, "usage: fieldflash-release %s %s\n\n%s\n\nflags:\n", name, strings.SplitN(usage, "\n", 2)[0], strings.TrimSpace(strings.SplitN(usage+"\n", "\n", 2)[1]))
		fs.PrintDefaults()
	}
	return fs, repo
}

// parse parses args; --help prints the usage to stdout.
func parse(fs *flag.FlagSet, args []string, out io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(out)
		fs.Usage()
		return err
	}
	if err != nil {
		return usageError{err.Error()}
	}
	return nil
}

func require(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
			return usagef("--%s is required", n)
		}
	}
	return nil
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags go before arguments)", fs.Arg(0))
	}
	return nil
}
