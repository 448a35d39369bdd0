// Package ymodem speaks YMODEM batch (CRC-16, 1024-byte blocks) for classic serial
// bootloaders: the sender the flasher uses, the receiver the virtual device in
// sim/ymodemdev uses, and a flasher.Driver over both conventions described in
// docs/protocols.md § YMODEM. Both sides interoperate with lrzsz (sb/rb --ymodem): block 0
// carries "name\0size mtime mode", the last block is padded with 0x1A, the receiver NAKs
// the first EOT and ACKs the second, and an empty block 0 ends the batch.
//
// YMODEM cannot resume: a transfer that breaks restarts from the first byte.
package ymodem

import (
	"errors"
	"fmt"
)

// Control bytes, as in Chuck Forsberg's XMODEM/YMODEM reference (ymodem.txt).
const (
	SOH byte = 0x01 // 128-byte block follows
	STX byte = 0x02 // 1024-byte block follows
	EOT byte = 0x04
	ACK byte = 0x06
	NAK byte = 0x15
	CAN byte = 0x18
	CRC byte = 'C' // "send with CRC-16"
	Pad byte = 0x1A
)

// ErrCancelled is returned when the other side sent CAN CAN.
var ErrCancelled = errors.New("the other side cancelled the transfer (CAN CAN)")

// ErrCancelledInData is ErrCancelled (errors.Is matches both) in answer to a data block.
// A receiver refuses a file at its header (name, size), when asked for the data, or at
// its end (the image check); a cancel in the middle of the data is a receiver that gave
// up on the line, so the sender may count it as a link fault when the receiver says no
// more (see Driver.Write).
var ErrCancelledInData error = cancelledInData{}

type cancelledInData struct{}

func (cancelledInData) Error() string {
	return "the other side cancelled the transfer (CAN CAN) in the middle of the data"
}
func (cancelledInData) Is(target error) bool { return target == ErrCancelled }

// ErrAborted wraps the reason a side gave up and cancelled the transfer itself.
var ErrAborted = errors.New("transfer aborted")

// ErrLineFault is wrapped (with ErrAborted) when the receiver gave up because of the line:
// too many damaged or missing blocks, a block out of order, an end of file before the
// declared size. Running the transfer again can succeed, unlike a refusal of the file.
var ErrLineFault = errors.New("the line damaged the transfer")

// ErrNoBatch is returned by Receive with ReceiveOptions.Resync when the block start it
// was handed was not followed by a header: a stray byte, not a sender starting a batch.
var ErrNoBatch = errors.New("no batch started: the block start was not followed by a header")

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), as YMODEM's CRC mode sends it.
func crc16(p []byte) uint16 {
	var crc uint16
	for _, b := range p {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^b]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// cancelSequence is what lrzsz sends to cancel: CANs, then backspaces that erase them on a
// terminal that shows them.
var cancelSequence = []byte{CAN, CAN, CAN, CAN, CAN, CAN, CAN, CAN, 8, 8, 8, 8, 8, 8, 8, 8}

// blockError says which block failed and why.
type blockError struct {
	block  int
	reason string
}

func (e *blockError) Error() string { return fmt.Sprintf("block %d: %s", e.block, e.reason) }
