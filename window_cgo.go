//go:build cgo

package main

import (
	"fmt"
	"os"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/cli"
	"github.com/fieldflash/fieldflash/ui"
)

func init() { cli.OpenWindow = openWindow }

// openWindow opens the desktop app; without a display it says so and lists the
// commands, which work without one.
func openWindow(w cli.Window) int {
	if !cli.HasDisplay() {
		fmt.Fprintln(os.Stderr, "fieldflash: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); every command works in the terminal:")
		cli.Usage(os.Stderr)
		return 2
	}
	releaseConsole()
	opt := ui.Options{Bundle: w.Bundle}
	if w.Demo {
		d, err := app.StartDemo(app.DemoOptions{SMPBaud: w.SMPBaud, YMODEMBaud: w.YMODEMBaud})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fieldflash demo:", err)
			return 3
		}
		defer d.Close()
		opt.Demo = d
	}
	return ui.Run(opt)
}
