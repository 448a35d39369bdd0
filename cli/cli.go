// Package cli is fieldflash's command line: flags, help and printing only. Every
// command is one call into app/, whose events a printer here shows as text, a progress
// bar or JSON lines (package progress). The fieldflash binary (main.go at the repository
// root) runs Main when it is given a command.
//
// docs/cli.md has the full reference and the exit codes.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fieldflash/fieldflash/app"
)

// Exit codes, the same for every command (docs/cli.md).
const (
	exitOK       = 0 // everything held
	exitRefused  = 1 // the bundle, device or operation was refused for a stated reason
	exitUsage    = 2 // the command line was wrong
	exitEnv      = 3 // the environment failed: a file, directory or port could not be used
	exitDevice   = 4 // the device stopped answering or failed; the journal allows a resume
	exitCanceled = 5 // interrupted by the user; run the same command again to resume
)

type command struct {
	name    string
	summary string
	run     func(env *env, args []string) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// env is what every command gets: where to write, and how.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
}

// Main runs the command in args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app.Version = Version
	return run(&env{stdout: stdout, stderr: stderr, stdin: stdin}, args)
}

// Usage prints the list of commands, as `fieldflash help` does.
func Usage(w io.Writer) { usage(w) }

func run(e *env, args []string) int {
	// fieldflash --telemetry=on|off COMMAND: the answer to the first-run question, for
	// scripts and CI.
	answer := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "--telemetry") {
		v, ok := strings.CutPrefix(args[0], "--telemetry=")
		if !ok {
			if args[0] != "--telemetry" || len(args) < 2 {
				fmt.Fprintln(e.stderr, "fieldflash: --telemetry=on or --telemetry=off, before the command")
				return exitUsage
			}
			v, args = args[1], args[1:]
		}
		answer, args = v, args[1:]
	}
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(e, []string{"--help"})
			}
		}
		usage(e.stdout)
		return exitOK
	case "version", "--version", "-version":
		return printVersion(e.stdout, args[1:])
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "fieldflash: unknown command %q; run `fieldflash help` for the list\n", name)
		return exitUsage
	}
	if !isHelp(args[1:]) {
		if code := telemetryAnswer(e, answer, name); code != exitOK {
			return code
		}
	}
	code := c.run(e, args[1:])
	if reports[name] {
		flushTelemetry()
	}
	return code
}

// reports are the commands that may queue telemetry, sent briefly after they ran.
var reports = map[string]bool{"verify": true, "flash": true, "recover": true}

func isHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return len(args) > 0 && args[0] == "help"
}

// visited names the flags given on the command line.
func visited(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// warnSession prints what went wrong while the session recorded its work (audit log,
// telemetry queue): the work itself is done, but the person must know.
func warnSession(e *env, s *app.Session) {
	if s == nil {
		return
	}
	for _, w := range s.Warnings() {
		fmt.Fprintln(e.stderr, "⚠", clean(w))
	}
}

// Version is set at build time with -ldflags "-X github.com/fieldflash/fieldflash/cli.Version=...".
var Version = "dev"

func usage(w io.Writer) {
	fmt.Fprintln(w, "fieldflash verifies signed firmware bundles offline and flashes devices.")
	fmt.Fprintln(w, "\nUsage: fieldflash COMMAND [options]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "  help         show this list, or `fieldflash help COMMAND`")
	fmt.Fprintln(w, "  version      print the version")
	fmt.Fprintln(w, "\nEvery command takes --help. State lives in $FIELDFLASH_HOME (default: the user config dir).")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 refused (reason printed), 2 usage, 3 environment, 4 device failed or")
	fmt.Fprintln(w, "stopped answering (resumable), 5 interrupted (resumable: run the same command again).")
	fmt.Fprintln(w, "\nNo hardware at hand? `fieldflash demo` runs the whole job against two virtual devices.")
}

// newFlags makes a FlagSet whose --help prints the command's usage to stdout and whose
// errors print to stderr.
func newFlags(e *env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: fieldflash %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "\nOptions:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; it returns (code, true) when the command must stop here.
func parse(e *env, fs *flag.FlagSet, args []string) (int, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return exitOK, true
		}
	}
	if err := fs.Parse(interleave(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	return 0, false
}

// interleave moves flags after positional arguments to the front, so
// `fieldflash verify x.fwb --json` works as people type it.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
