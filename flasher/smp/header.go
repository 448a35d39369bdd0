package smp

import (
	"encoding/binary"
	"fmt"
)

// Op is the SMP operation.
type Op uint8

// SMP operations.
const (
	OpRead     Op = 0
	OpReadRsp  Op = 1
	OpWrite    Op = 2
	OpWriteRsp Op = 3
)

// SMP versions as carried in the header's version bits. Version 2 ("SMP v2") changed the
// error form of responses from {"rc"} to {"err": {"group", "rc"}}.
const (
	Version1 uint8 = 0
	Version2 uint8 = 1
)

// Management groups and the commands of them this package speaks.
const (
	GroupOS    uint16 = 0
	GroupImage uint16 = 1

	OSEcho           uint8 = 0
	OSReset          uint8 = 5
	OSParams         uint8 = 6
	OSInfo           uint8 = 7
	OSBootloaderInfo uint8 = 8

	ImageState  uint8 = 0
	ImageUpload uint8 = 1
	ImageErase  uint8 = 5
)

// HeaderSize is the size of the SMP header.
const HeaderSize = 8

// Header is the 8-byte SMP header. Byte 0 holds the op in its low 3 bits and the version
// in the next 2 (Zephyr's nh_op:3, nh_version:2 bitfield).
type Header struct {
	Op      Op
	Version uint8
	Flags   uint8
	Len     uint16 // length of the CBOR body
	Group   uint16
	Seq     uint8
	ID      uint8
}

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	b = append(b, byte(h.Op)&7|(h.Version&3)<<3, h.Flags)
	b = binary.BigEndian.AppendUint16(b, h.Len)
	b = binary.BigEndian.AppendUint16(b, h.Group)
	return append(b, h.Seq, h.ID)
}

// ParseMessage splits an SMP message into its header and CBOR body.
func ParseMessage(msg []byte) (Header, []byte, error) {
	if len(msg) < HeaderSize {
		return Header{}, nil, fmt.Errorf("SMP message of %d bytes is shorter than its 8-byte header", len(msg))
	}
	h := Header{
		Op:      Op(msg[0] & 7),
		Version: msg[0] >> 3 & 3,
		Flags:   msg[1],
		Len:     binary.BigEndian.Uint16(msg[2:]),
		Group:   binary.BigEndian.Uint16(msg[4:]),
		Seq:     msg[6],
		ID:      msg[7],
	}
	body := msg[HeaderSize:]
	if int(h.Len) != len(body) {
		return h, nil, fmt.Errorf("SMP header says %d body bytes, %d arrived", h.Len, len(body))
	}
	return h, body, nil
}

// BuildMessage encodes a header (its Len set from body) followed by body.
func BuildMessage(h Header, body []byte) []byte {
	h.Len = uint16(len(body))
	return append(h.Append(make([]byte, 0, HeaderSize+len(body))), body...)
}
