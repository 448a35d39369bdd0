package smp

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Console framing markers: the first frame of a packet starts with 0x06 0x09, each
// continuation with 0x04 0x14; every frame ends with a newline.
const (
	startByte0 = 0x06
	startByte1 = 0x09
	contByte0  = 0x04
	contByte1  = 0x14
)

// Frame sizes of the two conventions in the field. Both count the two marker bytes and the
// newline. Zephyr's mcumgr and MCUboot send at most 127 bytes (124 base64 characters, whole
// 4-character groups); mynewt's smp-console.md and some host tools fill 128 bytes (125
// characters, so a group may straddle two frames). The decoder accepts both because it
// joins a packet's base64 text before decoding it.
const (
	Frame127 = 127
	Frame128 = 128
)

// MaxPacket bounds the decoded packet (length prefix, SMP message, CRC) a FrameDecoder
// will collect; the 16-bit length field allows no more.
const MaxPacket = 2 + 65535

// maxLine bounds one console line, so a device that prints an endless line without a
// newline cannot make the decoder grow without end.
const maxLine = 4096

// CRC16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the CRC
// Zephyr calls crc16_itu_t and MCUboot crc16_ccitt with seed 0.
func CRC16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// EncodePacket frames one SMP message for the console: 2-byte big-endian length (message
// plus CRC), the message, CRC16 big-endian, base64 of all of it cut into frames of at most
// frameSize bytes (Frame127 or Frame128; anything below 8 is raised to Frame127).
func EncodePacket(msg []byte, frameSize int) []byte {
	if frameSize < 8 {
		frameSize = Frame127
	}
	raw := make([]byte, 0, len(msg)+4)
	raw = binary.BigEndian.AppendUint16(raw, uint16(len(msg)+2))
	raw = append(raw, msg...)
	raw = binary.BigEndian.AppendUint16(raw, CRC16(msg))
	text := base64.StdEncoding.EncodeToString(raw)
	per := frameSize - 3
	out := make([]byte, 0, len(text)+(len(text)/per+1)*3)
	for i := 0; i < len(text); i += per {
		if i == 0 {
			out = append(out, startByte0, startByte1)
		} else {
			out = append(out, contByte0, contByte1)
		}
		out = append(out, text[i:min(i+per, len(text))]...)
		out = append(out, '\n')
	}
	return out
}

// EncodedLen is the number of bytes EncodePacket writes for a message of n bytes.
func EncodedLen(n, frameSize int) int {
	if frameSize < 8 {
		frameSize = Frame127
	}
	chars := base64.StdEncoding.EncodedLen(n + 4)
	per := frameSize - 3
	frames := (chars + per - 1) / per
	return chars + 3*frames
}

// ErrFrame marks a console packet that arrived whole but does not decode: bad base64, a
// length that disagrees with the data, or a CRC mismatch. A FrameDecoder reports it and
// goes on with the next packet, as a device does.
var ErrFrame = errors.New("malformed SMP console packet")

// FrameDecoder collects SMP messages from console bytes. Lines that are not SMP frames
// (a device's log output shares the console) are skipped.
type FrameDecoder struct {
	// MaxPacket bounds the decoded packet (length prefix + message + CRC); 0 means
	// the package MaxPacket. A longer packet is dropped with an error.
	MaxPacket int

	line    []byte
	text    []byte // base64 text of the packet being collected
	inPkt   bool
	dropped bool // the current line overflowed maxLine
}

// Write feeds console bytes and returns the SMP messages they completed, in order. Errors
// of packets that failed are returned as well (joined); the decoder stays usable.
func (d *FrameDecoder) Write(p []byte) (msgs [][]byte, err error) {
	var errs []error
	for _, b := range p {
		if b != '\n' {
			if len(d.line) >= maxLine {
				d.dropped = true
				continue
			}
			d.line = append(d.line, b)
			continue
		}
		line := d.line
		d.line = d.line[:0]
		if d.dropped {
			d.dropped = false
			d.reset()
			continue
		}
		msg, e := d.frame(line)
		if e != nil {
			errs = append(errs, e)
		}
		if msg != nil {
			msgs = append(msgs, msg)
		}
	}
	return msgs, errors.Join(errs...)
}

func (d *FrameDecoder) reset() {
	d.text = d.text[:0]
	d.inPkt = false
}

func (d *FrameDecoder) limit() int {
	if d.MaxPacket > 0 && d.MaxPacket < MaxPacket {
		return d.MaxPacket
	}
	return MaxPacket
}

func (d *FrameDecoder) frame(line []byte) ([]byte, error) {
	// A serial console on a PC may deliver "\r\n"; the carriage return is not base64.
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) < 2 {
		return nil, nil
	}
	switch {
	case line[0] == startByte0 && line[1] == startByte1:
		d.reset()
		d.inPkt = true
	case line[0] == contByte0 && line[1] == contByte1:
		if !d.inPkt {
			return nil, nil // a continuation without its start: the start was lost
		}
	default:
		return nil, nil // console output that is not SMP
	}
	d.text = append(d.text, line[2:]...)
	if base64.StdEncoding.EncodedLen(d.limit()) < len(d.text) {
		d.reset()
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrFrame, d.limit())
	}
	if len(d.text) < 4 {
		return nil, nil
	}
	var head [3]byte
	if _, err := base64.StdEncoding.Decode(head[:], d.text[:4]); err != nil {
		d.reset()
		return nil, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	n := int(binary.BigEndian.Uint16(head[:2])) // message + CRC
	if n < 2 || 2+n > d.limit() {
		d.reset()
		return nil, fmt.Errorf("%w: length field announces a %d-byte packet, the buffer takes %d", ErrFrame, 2+n, d.limit())
	}
	want := base64.StdEncoding.EncodedLen(2 + n)
	if len(d.text) < want {
		return nil, nil // more frames to come
	}
	defer d.reset()
	if len(d.text) > want {
		return nil, fmt.Errorf("%w: %d base64 characters after the %d the length field asks for", ErrFrame, len(d.text)-want, want)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(d.text)))
	got, err := base64.StdEncoding.Strict().Decode(raw, d.text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	if got != 2+n {
		return nil, fmt.Errorf("%w: %d bytes decoded, length field says %d", ErrFrame, got, 2+n)
	}
	msg := raw[2 : 2+n-2]
	crc := binary.BigEndian.Uint16(raw[2+n-2 : 2+n])
	if c := CRC16(msg); c != crc {
		return nil, fmt.Errorf("%w: CRC 0x%04x, computed 0x%04x", ErrFrame, crc, c)
	}
	return msg, nil
}
