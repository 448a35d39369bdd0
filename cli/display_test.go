//go:build !windows && !darwin

package cli

import "testing"

// Over ssh or on a server there is no display: the desktop app is not tried there, and
// `fieldflash demo` runs in the terminal. (Windows and macOS always have their desktop:
// display_desktop.go.)
func TestWindowNeedsAnX11OrWaylandDisplayOnLinux(t *testing.T) {
	for _, c := range []struct {
		display, wayland string
		want             bool
	}{{"", "", false}, {":0", "", true}, {"", "wayland-0", true}} {
		t.Setenv("DISPLAY", c.display)
		t.Setenv("WAYLAND_DISPLAY", c.wayland)
		if got := HasDisplay(); got != c.want {
			t.Errorf("DISPLAY=%q WAYLAND_DISPLAY=%q: HasDisplay() = %v, want %v", c.display, c.wayland, got, c.want)
		}
	}
}
