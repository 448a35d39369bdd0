package serial

import (
	"errors"
	"syscall"
)

// isGone reports the errors Windows gives when a USB-serial adapter is unplugged under an
// open handle.
func isGone(err error) bool {
	const errDeviceNotConnected = syscall.Errno(1167)
	return errors.Is(err, syscall.ERROR_OPERATION_ABORTED) || errors.Is(err, errDeviceNotConnected) || errors.Is(err, syscall.ERROR_FILE_NOT_FOUND)
}
