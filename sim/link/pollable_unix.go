//go:build !windows

package link

import (
	"os"
	"syscall"
)

// pollable returns f as a file the Go runtime polls, closing f. creack/pty hands back a
// master in blocking mode (its ioctls call Fd), and a blocking Read cannot be woken by
// Close: a cable pull would leave the pump stuck in read(2) for ever.
func pollable(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f.Close()
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// readNow reads what is already there without waiting: ok is false when nothing was.
// The pump uses it to tell a busy line (bytes waiting) from an idle one.
func readNow(f *os.File, buf []byte) (n int, ok bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var rerr error
	cerr := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true
	})
	switch {
	case cerr != nil:
		return 0, true, cerr
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, false, nil
	case rerr != nil:
		return 0, true, rerr
	case n < 0:
		return 0, false, nil
	}
	return n, true, nil
}
