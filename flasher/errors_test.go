package flasher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	serialport "github.com/fieldflash/fieldflash/transports/serial"
)

type deviceRefusal struct{}

func (deviceRefusal) Error() string { return "rc 3: invalid value" }

func TestLinkFaultsAreRetriedRefusalsAreNot(t *testing.T) {
	transient := []error{
		fmt.Errorf("serial port /dev/ttyACM0: read: %w", serialport.ErrDisconnected),
		&os.PathError{Op: "write", Path: "/dev/ttyUSB0", Err: syscall.EIO},
		fmt.Errorf("reading answer: %w", io.ErrUnexpectedEOF),
		context.DeadlineExceeded,
		os.ErrDeadlineExceeded,
		&linkError{context.Canceled}, // a stall watchdog's cancel is a link fault
	}
	for _, err := range transient {
		if !IsTransient(err) {
			t.Errorf("%v: not retried", err)
		}
	}
	permanent := []error{nil, deviceRefusal{}, context.Canceled, errors.New("image too large for slot")}
	for _, err := range permanent {
		if IsTransient(err) {
			t.Errorf("%v: retried", err)
		}
	}
}
