//go:build !linux

package serial

const permissionHint = "check that your user may open the port (on macOS and the BSDs: the port's group, e.g. dialer or uucp), then retry"
