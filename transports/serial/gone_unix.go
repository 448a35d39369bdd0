//go:build !windows

package serial

import (
	"errors"
	"syscall"
)

// isGone reports errors the kernel gives for a tty whose other end vanished: EIO on a
// hung-up pseudo-terminal or a USB-serial adapter pulled mid-write, ENXIO/ENODEV once the
// device node is gone.
func isGone(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}
