package smpdev

import (
	"encoding/binary"
	"time"
)

// rawDecoder is the receive side of Zephyr's raw UART transport
// (mcumgr_serial_process_frag with raw_transport, subsys/mgmt/mcumgr/transport/src/
// serial_util.c): bytes are appended as the UART driver hands them over; once the 8-byte
// SMP header is in, the packet is its header plus nh_len bytes. A packet larger than the
// buffer, an op code above 3, or a fragment that carries more bytes than the packet
// (two packets run together, or noise after one) drops everything held. No CRC: a
// corrupted byte goes through to the SMP layer, which refuses what it cannot decode.
// With CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT a timer started on a partial packet
// drops it when the next fragment comes later than the timeout (Profile.RawInputTimeout;
// Serve applies it): the only way the transport finds the start of a packet again after
// a lost byte.
type rawDecoder struct {
	max  int
	buf  []byte
	last time.Time
}

// Write takes one fragment (one read from the UART) and returns the packet it completes.
func (r *rawDecoder) Write(frag []byte) []byte {
	r.buf = append(r.buf, frag...)
	if len(r.buf) < 8 {
		return nil
	}
	total := int(binary.BigEndian.Uint16(r.buf[2:4])) + 8
	switch {
	case total > r.max, r.buf[0]&0x07 > 3:
		r.buf = nil
		return nil
	case len(r.buf) < total:
		return nil
	case len(r.buf) > total:
		r.buf = nil
		return nil
	}
	pkt := r.buf
	r.buf = nil
	return pkt
}
