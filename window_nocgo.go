//go:build !cgo

package main

import (
	"fmt"
	"os"

	"github.com/fieldflash/fieldflash/cli"
)

// openWindow says that this build has no window and how to get one; the command line
// is all here.
func openWindow(cli.Window) int {
	fmt.Fprintln(os.Stderr, "fieldflash: this build has no GUI: it was built without cgo (CGO_ENABLED=0), which the desktop app needs.")
	fmt.Fprintln(os.Stderr, "For the window, build with cgo and Fyne's system packages (Debian/Ubuntu: `make build`, which installs")
	fmt.Fprintln(os.Stderr, "them, or `apt-get install gcc libgl1-mesa-dev xorg-dev libwayland-dev libxkbcommon-dev` and")
	fmt.Fprintln(os.Stderr, "`CGO_ENABLED=1 go build .`). Every command works in this build:")
	fmt.Fprintln(os.Stderr)
	cli.Usage(os.Stderr)
	return 2
}
