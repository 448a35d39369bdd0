// Package ui is fieldflash's desktop app (Fyne): one screen per file, each a function
// that returns a fyne.CanvasObject, over a shared State that talks to app/ only — never
// to flasher/, sim/, transports/ or a port. Device work runs off the UI goroutine; every
// change to a widget from elsewhere goes through fyne.Do.
//
// Everything but this file needs cgo (Fyne's OpenGL driver): a CGO_ENABLED=0 build of
// fieldflash has the whole command line and no window.
package ui
