// Command fieldflash verifies signed firmware bundles offline and flashes devices over
// USB and serial. Started with no arguments (or with just a bundle, `fieldflash
// acme-7.2.fwb`) it opens the desktop app; with a command it is the command line:
// `fieldflash help` lists the commands, and docs/cli.md has the full reference and the
// exit codes. A build without cgo has the whole command line and no window.
//
//	go install github.com/fieldflash/fieldflash@latest
package main

import (
	"os"
	"strings"

	"github.com/fieldflash/fieldflash/cli"
)

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 0:
		os.Exit(openWindow(cli.Window{}))
	case len(args) == 1 && strings.HasSuffix(strings.ToLower(args[0]), ".fwb"):
		os.Exit(openWindow(cli.Window{Bundle: args[0]}))
	}
	os.Exit(cli.Main(args, os.Stdin, os.Stdout, os.Stderr))
}
