//go:build !windows && !darwin

package cli

import "os"

// HasDisplay says whether a window can be opened: on Linux and the BSDs, an X11 or
// Wayland display is set (over ssh or on a server there is none).
func HasDisplay() bool {
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}
