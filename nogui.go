package main

import (
	"os"

	"github.com/fieldflash/fieldflash/cli"
)

// openWindow is what `fieldflash` with no command does until the desktop app is built
// in: the list of commands, exit 2, as before.
func openWindow() int {
	cli.Usage(os.Stderr)
	return 2
}
