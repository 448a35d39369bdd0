package assets

import _ "embed"

// Icon is the desktop app's icon (256x256 PNG; FyneApp.toml points `fyne package` at it).
// Drawn by a small program of shapes: a chip with a bolt, no third-party artwork.
//
//go:embed icon.png
var Icon []byte
