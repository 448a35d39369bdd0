//go:build cgo && linux

package main

import (
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Windows build of fieldflash (fieldflash.exe, cross-built with mingw-w64 and cgo by
// packaging/build.sh) opens its main window under Wine on a real X server, draws it, and
// answers the keyboard: the same checks as the Linux real-window test, on the Windows
// binary a technician downloads. packaging/check-wine.sh runs it with
//
//	FIELDFLASH_WINE_EXE  the .exe to run          FIELDFLASH_WINE  the wine64 command
//
// (and WINEPREFIX); without them it is skipped. The screenshot is kept as
// windows-wine.png under $FIELDFLASH_SCREENSHOTS when that is set.
func TestWindowsBuildOpensItsMainWindowUnderWine(t *testing.T) {
	exe, wine := os.Getenv("FIELDFLASH_WINE_EXE"), os.Getenv("FIELDFLASH_WINE")
	if exe == "" || wine == "" {
		t.Skip("run by packaging/check-wine.sh, which sets FIELDFLASH_WINE_EXE and FIELDFLASH_WINE")
	}
	display := startX(t)
	home := t.TempDir()
	writeSettings(t, home, "technician", "light")
	g := &gui{t: t, display: display, home: home, trace: filepath.Join(t.TempDir(), "trace.jsonl"), log: &strings.Builder{}}
	// No arguments: the desktop app, as a double-click in Explorer starts it. Paths are
	// given as the Windows program sees them (Wine maps / to drive Z:).
	g.cmd = exec.Command(wine, exe)
	g.cmd.Env = append(os.Environ(), "DISPLAY="+display, "FIELDFLASH_HOME="+winePath(home),
		"FIELDFLASH_UI_TRACE="+winePath(g.trace), "WINEDEBUG=-all")
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	g.started = time.Now()
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
	})

	wid := g.window()
	if name := g.xdotool("getwindowname", wid); name != "fieldflash" {
		t.Fatalf("window title %q", name)
	}
	g.waitEvent("the first frame", 0, func(m map[string]any) bool { return m["ev"] == "first-tick" })
	// The navigation laid out: the main window, not a splash or an error box.
	_, n := g.waitEvent("the main window's navigation", 0, func(m map[string]any) bool { return m["ev"] == "layout" && m["id"] == "nav-settings" })
	time.Sleep(time.Second) // let the first screen's content settle before the picture

	img, err := captureWindow(display, wid)
	if err != nil {
		t.Fatal(err)
	}
	ok, colors, off := drawn(img)
	if !ok {
		t.Fatalf("the window under Wine looks blank: %d colours, %.1f %% off the background; fieldflash.exe said:\n%s", colors, off*100, g.log)
	}
	if b := img.Bounds(); b.Dx() < 640 || b.Dy() < 400 {
		t.Fatalf("the window is %dx%d, too small to be the main window", b.Dx(), b.Dy())
	}
	if dir := os.Getenv("FIELDFLASH_SCREENSHOTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		f, err := os.Create(filepath.Join(dir, "windows-wine.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Logf("main window %dx%d, %d colours, %.0f %% off the background, %v after start",
		img.Bounds().Dx(), img.Bounds().Dy(), colors, off*100, time.Since(g.started).Round(time.Millisecond))

	// The keyboard reaches the Windows program: Ctrl+6 is the settings screen.
	g.xdotool("windowfocus", "--sync", wid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		g.xdotool("key", "--window", wid, "ctrl+6")
		found := false
		for _, e := range g.events()[n:] {
			if e["ev"] == "show" && e["id"] == "settings" {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ctrl+6 did not show the settings screen; fieldflash.exe said:\n%s", g.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// winePath is how a Windows program under Wine names a file of this machine.
func winePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	return "Z:" + strings.ReplaceAll(abs, "/", `\`)
}
