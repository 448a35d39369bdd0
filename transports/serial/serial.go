// Package serial opens serial ports (USB-serial adapters, CDC-ACM devices, on-board UARTs
// and the pseudo-terminals of virtual devices) for the protocol drivers, and turns the
// operating system's refusals into sentences a technician can act on.
//
// Every port is opened 8N1 with no flow control. Drivers read with a timeout
// (Port.SetReadTimeout): a read that times out returns (0, nil), not an error and not
// io.EOF, so a driver loops until its own deadline. A pulled cable or a device that drops
// off the USB bus makes Read and Write fail with an error that matches ErrDisconnected.
package serial

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bugst "go.bug.st/serial"
)

// Port is one open serial port.
//
// Read blocks until at least one byte arrives, the read timeout passes, or the port fails.
// On timeout it returns (0, nil): drivers must treat a zero-length read without error as
// "nothing yet", never as end of stream.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds each Read; d <= 0 means Read waits for data without limit.
	SetReadTimeout(d time.Duration) error
	// Path is the path the port was opened by (a symlink stays a symlink).
	Path() string
}

// ModemControl is offered by ports that can drive the DTR and RTS lines, which many
// boards wire to reset and boot-mode pins. Both are best effort: a line a port cannot
// drive (a pseudo-terminal, some CDC-ACM stacks) is not an error.
type ModemControl interface {
	SetDTR(on bool) error
	SetRTS(on bool) error
}

// InputFlusher is offered by ports that can discard bytes received but not yet read, so a
// driver can start a conversation without a boot banner or a half frame in the way.
type InputFlusher interface {
	ResetInputBuffer() error
}

// ErrDisconnected matches (errors.Is) the error of a Read or Write on a port whose device
// went away: a pulled cable, a board that reset its USB, a virtual device's cable pull.
var ErrDisconnected = errors.New("device disconnected")

// DefaultBaud is used when Open is given a baud rate of 0.
const DefaultBaud = 115200

// Open opens path at baud (8 data bits, no parity, 1 stop bit, no flow control).
// DTR and RTS are left as the operating system sets them on open; a driver that needs them
// in a given state uses ModemControl after Open.
func Open(path string, baud int) (Port, error) {
	if baud < 0 {
		return nil, fmt.Errorf("serial port %s: baud rate %d is negative; pass the device's rate, e.g. 115200", path, baud)
	}
	if baud == 0 {
		baud = DefaultBaud
	}
	// InitialStatusBits stays nil on purpose: setting it issues modem ioctls that fail on
	// pseudo-terminals, which would make every virtual device unopenable.
	mode := &bugst.Mode{BaudRate: baud, DataBits: 8, Parity: bugst.NoParity, StopBits: bugst.OneStopBit}
	p, err := bugst.Open(path, mode)
	if err != nil {
		return nil, openError(path, baud, err)
	}
	if err := p.SetReadTimeout(readSlice); err != nil {
		p.Close()
		return nil, fmt.Errorf("serial port %s: read timeout: %w", path, err)
	}
	return &port{p: p, path: path}, nil
}

// readSlice bounds each read handed to go.bug.st/serial, so that Close never has to close
// the descriptor under a reader: go.bug.st closes the fd first and then waits for readers,
// and a reader between its select and its read would then block on whatever file reused
// that fd number (a re-plugged port opened meanwhile), holding Close forever.
const readSlice = 100 * time.Millisecond

type port struct {
	p      bugst.Port
	path   string
	closed atomic.Bool

	// io is held shared by every Read and Write, and exclusively by Close before it closes
	// the descriptor.
	io      sync.RWMutex
	timeout atomic.Int64 // the caller's read timeout; 0 waits without limit
}

func (p *port) Path() string { return p.path }

// Read waits up to the read timeout for bytes, in slices of readSlice, and returns (0,
// nil) when none came. A Close from another goroutine ends it within one slice.
func (p *port) Read(b []byte) (int, error) {
	p.io.RLock()
	defer p.io.RUnlock()
	var deadline time.Time
	if t := time.Duration(p.timeout.Load()); t > 0 {
		deadline = time.Now().Add(t)
	}
	for {
		if p.closed.Load() {
			return 0, p.ioError("read", os.ErrClosed)
		}
		n, err := p.p.Read(b)
		if err != nil {
			return n, p.ioError("read", err)
		}
		if n > 0 || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return n, nil
		}
	}
}

func (p *port) Write(b []byte) (int, error) {
	p.io.RLock()
	defer p.io.RUnlock()
	if p.closed.Load() {
		return 0, p.ioError("write", os.ErrClosed)
	}
	n, err := p.p.Write(b)
	if err != nil {
		return n, p.ioError("write", err)
	}
	return n, nil
}

func (p *port) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	p.io.Lock() // readers leave within one slice
	defer p.io.Unlock()
	if err := p.p.Close(); err != nil {
		return fmt.Errorf("serial port %s: close: %w", p.path, err)
	}
	return nil
}

func (p *port) SetReadTimeout(d time.Duration) error {
	if d < 0 {
		d = 0
	}
	p.timeout.Store(int64(d))
	slice := readSlice
	if d > 0 && d < slice {
		slice = d // a short timeout is one slice: no read waits longer than asked
	}
	p.io.Lock()
	defer p.io.Unlock()
	if err := p.p.SetReadTimeout(slice); err != nil {
		return fmt.Errorf("serial port %s: read timeout %v: %w", p.path, d, err)
	}
	return nil
}

func (p *port) SetDTR(on bool) error { return p.modemLine("DTR", p.p.SetDTR(on)) }
func (p *port) SetRTS(on bool) error { return p.modemLine("RTS", p.p.SetRTS(on)) }

func (p *port) ResetInputBuffer() error {
	if err := p.p.ResetInputBuffer(); err != nil {
		return p.ioError("discard input", err)
	}
	return nil
}

// modemLine forgives ports without modem lines: pseudo-terminals answer ENOTTY and some
// USB CDC-ACM drivers EINVAL, and a driver cannot do anything about either.
func (p *port) modemLine(line string, err error) error {
	if err == nil || errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return p.ioError("set "+line, err)
}

// ioError tells a cable pull apart from the caller's own Close: go.bug.st/serial reports
// both as PortClosed.
func (p *port) ioError(op string, err error) error {
	if p.closed.Load() {
		return fmt.Errorf("serial port %s: %s: port closed by fieldflash: %w", p.path, op, os.ErrClosed)
	}
	var pe *bugst.PortError
	if (errors.As(err, &pe) && pe.Code() == bugst.PortClosed) || isGone(err) {
		return &disconnectedError{path: p.path, op: op, err: err}
	}
	return fmt.Errorf("serial port %s: %s: %w", p.path, op, err)
}

type disconnectedError struct {
	path, op string
	err      error
}

func (e *disconnectedError) Error() string {
	return fmt.Sprintf("serial port %s: %s: device disconnected (cable pulled, or the device reset its USB); plug it back in, wait for it to show up in `fieldflash devices`, and retry", e.path, e.op)
}

func (e *disconnectedError) Is(target error) bool { return target == ErrDisconnected }
func (e *disconnectedError) Unwrap() error        { return e.err }

// openError turns what the operating system said into the thing, the reason and the next
// step.
func openError(path string, baud int, err error) error {
	var pe *bugst.PortError
	code := bugst.PortErrorCode(-1)
	if errors.As(err, &pe) {
		code = pe.Code()
	}
	switch {
	case code == bugst.PermissionDenied || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return &OpenError{Path: path, Reason: "permission denied", Next: permissionHint, Err: err}
	case code == bugst.PortBusy || errors.Is(err, syscall.EBUSY):
		return &OpenError{Path: path, Reason: "busy: another program has it open (a serial monitor, ModemManager, another fieldflash)", Next: "close that program and retry", Err: err}
	case code == bugst.PortNotFound || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV):
		return &OpenError{Path: path, Reason: "not found", Next: "is the cable plugged in? `fieldflash devices` lists ports", Err: err}
	case code == bugst.InvalidSpeed:
		return &OpenError{Path: path, Reason: fmt.Sprintf("baud rate %d not supported by this port", baud), Next: "use the device's documented rate, e.g. 115200", Err: err}
	case code == bugst.InvalidSerialPort || errors.Is(err, syscall.ENOTTY):
		return &OpenError{Path: path, Reason: "not a serial port", Next: "pick a port from `fieldflash devices`", Err: err}
	}
	return &OpenError{Path: path, Reason: err.Error(), Next: "check the cable and `fieldflash devices`, then retry", Err: err}
}

// OpenError says why a port could not be opened and what to do about it.
type OpenError struct {
	Path   string
	Reason string
	Next   string
	Err    error
}

func (e *OpenError) Error() string {
	return "serial port " + e.Path + ": " + e.Reason + "; " + e.Next
}

func (e *OpenError) Unwrap() error { return e.Err }
