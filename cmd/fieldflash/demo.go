package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldflash/fieldflash/app"
	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/verify"
)

func init() {
	register(&command{name: "demo", summary: "run the whole flow on the built-in demo bundle, no hardware needed", run: cmdDemo})
}

const demoHelp = `
Runs fieldflash's main job with nothing attached: writes the built-in demo bundle to
$FIELDFLASH_HOME/demo/demo.fwb and verifies it against the demo root, which is trusted in
demo mode only. Demo state is kept apart from real state ($FIELDFLASH_HOME/demo).

Exit codes: 0 done, 1 refused, 3 environment.`

func demoRoot() verify.PinnedRoot {
	return verify.PinnedRoot{Name: assets.DemoRepository, Root: assets.DemoRoot, Demo: true}
}

func cmdDemo(e *env, args []string) int {
	fs := newFlags(e, "demo", "[--json]", demoHelp)
	jsonOut := fs.Bool("json", false, "print the verdict as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	dir := filepath.Join(home, "demo")
	st, err := app.NewDiskState(dir)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	path := filepath.Join(dir, "demo.fwb")
	if err := os.WriteFile(path, assets.DemoBundle, 0o644); err != nil {
		return reportEnv(e, *jsonOut, fmt.Errorf("demo bundle %s: %v", path, err))
	}
	if !*jsonOut {
		fmt.Fprintf(e.stdout, "fieldflash demo: verifying the demo bundle %s offline (demo root trusted in demo mode only)\n\n", path)
	}
	v, err := verify.VerifyFile(path, verify.Options{Roots: []verify.PinnedRoot{demoRoot()}, DemoMode: true, State: st})
	if err != nil {
		return reportRefusal(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": true, "verified": v})
		return exitOK
	}
	printVerdict(e.stdout, v)
	return exitOK
}
