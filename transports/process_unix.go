//go:build !windows

package transports

import (
	"errors"
	"syscall"
)

// processAlive asks the kernel with signal 0; EPERM means the process exists but belongs
// to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
