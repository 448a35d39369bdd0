package cli

// Window is what the desktop app is asked to open with.
type Window struct {
	Bundle string // a bundle to open at once
	Demo   bool   // the demo: virtual devices and the demo bundle
	// SMPBaud and YMODEMBaud pace the demo's virtual cables (0: 115200).
	SMPBaud, YMODEMBaud int
}

// OpenWindow opens the desktop app and returns its exit code. The fieldflash binary
// sets it in builds that have a GUI (cgo); it is nil in a CGO_ENABLED=0 build, where
// `fieldflash demo` always runs in the terminal.
var OpenWindow func(Window) int
