//go:build cgo && linux

package main

// These tests start the real fieldflash binary on a real X server (Xvfb; Mesa draws the
// OpenGL), press keys and click with xdotool as a person would, and take screenshots
// from the X server. What each screen shows is read through the measurement hook
// (FIELDFLASH_UI_TRACE, ui/measure.go): the hook reports, the pixels are the proof that
// it was drawn.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	guiBinary string
	buildErr  error
)

// binaryWithGUI builds fieldflash with cgo, once per test run.
func binaryWithGUI(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fieldflash-gui")
		if err != nil {
			buildErr = err
			return
		}
		guiBinary = filepath.Join(dir, "fieldflash")
		cmd := exec.Command("go", "build", "-o", guiBinary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return guiBinary
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"Xvfb", "xdotool", "xwd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the real-window tests: run `bash .ci/deps` (it installs xvfb, xdotool and x11-apps)", tool)
		}
	}
}

// startX starts an X server of its own and returns its display name.
func startX(t *testing.T) string {
	t.Helper()
	needTools(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -noreset: without it the server resets when its last client leaves, and a window
	// opened in that moment finds no display (GLFW: PlatformUnavailable), as a test that
	// restarts the app on the same server does.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1366x768x24", "-nolisten", "tcp", "-noreset", "+extension", "GLX")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not start")
		}
		return ":" + n
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb did not say its display within 20 s")
	}
	return ""
}

// gui is the real binary running on an X server, with its measurement hook.
type gui struct {
	t       *testing.T
	display string
	cmd     *exec.Cmd
	trace   string
	home    string
	wid     string
	started time.Time
	log     *strings.Builder
}

func startGUI(t *testing.T, display, home string, args ...string) *gui {
	t.Helper()
	return startGUIWith(t, display, home, nil, args...)
}

func startGUIWith(t *testing.T, display, home string, env []string, args ...string) *gui {
	t.Helper()
	g := &gui{t: t, display: display, home: home, trace: filepath.Join(t.TempDir(), "trace.jsonl"), log: &strings.Builder{}}
	g.cmd = exec.Command(binaryWithGUI(t), args...)
	g.cmd.Env = append(append(os.Environ(), "DISPLAY="+display, "FIELDFLASH_HOME="+home, "FIELDFLASH_UI_TRACE="+g.trace, "XDG_RUNTIME_DIR="+t.TempDir()), env...)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	g.started = time.Now()
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	return g
}

func (g *gui) stop() {
	if g.cmd.ProcessState == nil {
		g.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			g.cmd.Process.Kill()
			<-done
		}
	}
}

// events reads the hook's lines so far.
func (g *gui) events() []map[string]any {
	b, _ := os.ReadFile(g.trace)
	var out []map[string]any
	for _, l := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitEvent waits for a hook event that ok accepts, after the n-th event.
func (g *gui) waitEvent(what string, from int, ok func(map[string]any) bool) (map[string]any, int) {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		evs := g.events()
		for i := from; i < len(evs); i++ {
			if ok(evs[i]) {
				return evs[i], i + 1
			}
		}
		if g.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("waited for %s; fieldflash said:\n%s", what, g.log)
	return nil, 0
}

func (g *gui) xdotool(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = []string{"DISPLAY=" + g.display}
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("xdotool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// window waits for the window named fieldflash and returns its id.
func (g *gui) window() string {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command("xdotool", "search", "--name", "^fieldflash$")
		cmd.Env = []string{"DISPLAY=" + g.display}
		if out, err := cmd.Output(); err == nil {
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				g.wid = ids[len(ids)-1]
				return g.wid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("no window named fieldflash; it said:\n%s", g.log)
	return ""
}

// origin is where the window sits on the screen.
func (g *gui) origin() (int, int) {
	out := g.xdotool("getwindowgeometry", "--shell", g.wid)
	var x, y int
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "X="); ok {
			x, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, "Y="); ok {
			y, _ = strconv.Atoi(v)
		}
	}
	return x, y
}

// screen asks the hook what the current screen shows.
func (g *gui) screen(from int) (map[string]any, int) {
	g.cmd.Process.Signal(syscall.SIGUSR1)
	return g.waitEvent("a screen dump", from, func(m map[string]any) bool { return m["ev"] == "screen" })
}

func texts(m map[string]any) string {
	var out []string
	for _, t := range m["texts"].([]any) {
		out = append(out, t.(string))
	}
	return strings.Join(out, "\n")
}

// button is where the screen's button with label is, in screen pixels.
func (g *gui) button(m map[string]any, label string) (int, int, bool) {
	ox, oy := g.origin()
	bs, _ := m["buttons"].([]any)
	for _, b := range bs {
		b := b.(map[string]any)
		if strings.Contains(b["text"].(string), label) && b["enabled"] == true {
			return ox + int(b["x"].(float64)+b["w"].(float64)/2), oy + int(b["y"].(float64)+b["h"].(float64)/2), true
		}
	}
	return 0, 0, false
}

func (g *gui) click(x, y int) {
	g.xdotool("mousemove", strconv.Itoa(x), strconv.Itoa(y), "click", "1")
}

// shoot takes a screenshot of the window, checks it was drawn, and keeps it under
// $FIELDFLASH_SCREENSHOTS when set (make screenshots).
func (g *gui) shoot(name string) {
	g.t.Helper()
	img, err := captureWindow(g.display, g.wid)
	if err != nil {
		g.t.Fatal(err)
	}
	if ok, colors, off := drawn(img); !ok {
		g.t.Fatalf("screenshot %s looks blank: %d colours, %.1f %% off the background", name, colors, off*100)
	}
	if dir := os.Getenv("FIELDFLASH_SCREENSHOTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			g.t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, img); err != nil {
			g.t.Fatal(err)
		}
	}
}

func writeSettings(t *testing.T, home, mode, theme string) {
	t.Helper()
	os.MkdirAll(home, 0o700)
	b := fmt.Sprintf(`{"mode": %q, "theme": %q, "baud": 115200, "ask_devices": true}`, mode, theme)
	if err := os.WriteFile(filepath.Join(home, "settings.json"), []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRealWindowDrawsEveryMainScreenOfTheDemo(t *testing.T) {
	display := startX(t)
	// A short home: its path shows on the screenshots.
	home, err := os.MkdirTemp("", "ff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	writeSettings(t, home, "technician", "light")
	g := startGUI(t, display, home, "demo")
	wid := g.window()
	if name := g.xdotool("getwindowname", wid); name != "fieldflash" {
		t.Fatalf("window title %q", name)
	}
	_, n := g.waitEvent("the first frame", 0, func(m map[string]any) bool { return m["ev"] == "first-tick" })
	g.xdotool("windowfocus", "--sync", wid)
	// The demo's bundle and both virtual devices, as the bundle screen shows them.
	want := []struct {
		key, id, name string
		shows         []string
	}{
		{"ctrl+1", "bundle", "bundle", []string{"Trusted", "fieldflash-demo", "[Open a bundle…]", "Signed by", "demo/sim-smp/app.bin"}},
		{"ctrl+2", "devices", "devices", []string{"fieldflash-sim-smp", "fieldflash-sim-ymodem", "the bundle fits", "[Pick every device the bundle fits]"}},
		{"ctrl+3", "update", "update", []string{"[Update 2 devices]", "for 2 device(s)"}},
		{"ctrl+4", "recovery", "recovery", []string{"Which port is the device on?", "[Next]"}},
		{"ctrl+6", "settings", "settings", []string{"Trust roots", "Baud rate", "[Import a trust root…]", "Dark"}},
	}
	for _, w := range want {
		deadline := time.Now().Add(30 * time.Second)
		var m map[string]any
		for {
			// Keyboard only: every screen is a shortcut away.
			g.xdotool("key", "--window", wid, w.key)
			time.Sleep(300 * time.Millisecond)
			m, n = g.screen(n)
			ok := m["id"] == w.id
			for _, s := range w.shows {
				ok = ok && strings.Contains(texts(m), s)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: screen %v shows:\n%s", w.id, m["id"], texts(m))
			}
		}
		if m["title"] != "fieldflash" {
			t.Errorf("window title %v", m["title"])
		}
		g.shoot(w.name)
	}
	// Update both devices with a click, shoot the screen mid-transfer and at the end.
	g.xdotool("key", "--window", wid, "ctrl+3")
	time.Sleep(300 * time.Millisecond)
	m, n := g.screen(n)
	x, y, ok := g.button(m, "Update 2 devices")
	if !ok {
		t.Fatalf("no Update button:\n%s", texts(m))
	}
	g.click(x, y)
	_, n = g.waitEvent("a transfer under way", n, func(m map[string]any) bool {
		b, _ := m["bytes"].(float64)
		return m["ev"] == "job" && m["step"] == "transfer" && b > 30<<10
	})
	g.shoot("update-flashing")
	m, n = g.screen(n)
	if s := texts(m); !strings.Contains(s, "Transfer") || !strings.Contains(s, "progress") {
		t.Fatalf("mid-transfer the update screen shows:\n%s", s)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		m, n = g.screen(n)
		if strings.Contains(texts(m), "2 passed, 0 failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the update did not finish:\n%s\n%s", texts(m), g.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	g.shoot("update-done")
	g.xdotool("key", "--window", wid, "ctrl+5")
	time.Sleep(300 * time.Millisecond)
	m, n = g.screen(n)
	if !strings.Contains(texts(m), "confirmed") {
		t.Fatalf("history after the update:\n%s", texts(m))
	}
	g.shoot("history")
	g.stop()

	// Simple mode, dark theme: what an end user sees.
	writeSettings(t, home, "simple", "dark")
	g = startGUI(t, display, home, "demo")
	wid = g.window()
	_, n = g.waitEvent("the first frame", 0, func(m map[string]any) bool { return m["ev"] == "first-tick" })
	deadline = time.Now().Add(30 * time.Second)
	for {
		m, n = g.screen(n)
		if strings.Contains(texts(m), "Found your device") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simple mode shows:\n%s", texts(m))
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(texts(m), "[Update my device]") || !strings.Contains(texts(m), "A genuine update") {
		t.Fatalf("simple mode shows:\n%s", texts(m))
	}
	g.shoot("simple")
	g.stop()

	// At 1.5x scale the window still fits the 1366x768 screen, and draws.
	writeSettings(t, home, "technician", "light")
	g = startGUIWith(t, display, home, []string{"FYNE_SCALE=1.5"}, "demo")
	wid = g.window()
	_, n = g.waitEvent("the first frame", 0, func(m map[string]any) bool { return m["ev"] == "first-tick" })
	deadline = time.Now().Add(30 * time.Second)
	for {
		m, n = g.screen(n)
		if strings.Contains(texts(m), "Trusted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("at 1.5x the bundle screen shows:\n%s", texts(m))
		}
		time.Sleep(300 * time.Millisecond)
	}
	geo := g.xdotool("getwindowgeometry", "--shell", wid)
	var w, h int
	for _, l := range strings.Split(geo, "\n") {
		if v, ok := strings.CutPrefix(l, "WIDTH="); ok {
			w, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, "HEIGHT="); ok {
			h, _ = strconv.Atoi(v)
		}
	}
	if w == 0 || w > 1366 || h > 768 {
		t.Fatalf("at 1.5x the window is %dx%d, more than the 1366x768 screen", w, h)
	}
	g.shoot("bundle-scale-150")
}
