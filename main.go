// Command fieldflash verifies signed firmware bundles offline and flashes devices over
// USB and serial. Started with no arguments it opens the desktop app (a build with cgo);
// with a command it is the command line: `fieldflash help` lists the commands, and
// docs/cli.md has the full reference and the exit codes.
//
//	go install github.com/fieldflash/fieldflash@latest
package main

import (
	"os"

	"github.com/fieldflash/fieldflash/cli"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(openWindow())
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
