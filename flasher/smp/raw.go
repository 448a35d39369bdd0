package smp

import (
	"bytes"
	"encoding/binary"

	"github.com/fxamacker/cbor/v2"
)

// Transports an SMP driver speaks.
const (
	// TransportAuto tries the console framing first and the raw UART transport when only
	// that answers, then keeps to the one that answered.
	TransportAuto = ""
	// TransportConsole is SMP over the console (Zephyr's CONFIG_MCUMGR_TRANSPORT_UART,
	// MCUboot serial recovery): base64 frames with a length prefix and a CRC.
	TransportConsole = "console"
	// TransportRaw is Zephyr's CONFIG_MCUMGR_TRANSPORT_RAW_UART: bare SMP packets (8-byte
	// header and body), a quarter fewer bytes on the wire.
	TransportRaw = "raw"
)

// maxRawResponse bounds a raw response the reader waits for: larger headers are noise.
const maxRawResponse = 16 << 10

// RawDecoder finds SMP responses in a raw UART byte stream, which has no frame marks and
// no CRC. A response is an 8-byte header with a response op code and a body of the
// header's length that is one well-formed CBOR map; anything else is noise and is
// skipped a byte at a time, so a lost or extra byte costs one answer (the request is sent
// again), not the stream. Idle drops a partial packet the device will never finish.
type RawDecoder struct {
	buf []byte
}

// Write feeds bytes and returns the responses they complete, in order.
func (r *RawDecoder) Write(p []byte) [][]byte {
	r.buf = append(r.buf, p...)
	var out [][]byte
	for len(r.buf) >= HeaderSize {
		op, ver := Op(r.buf[0]&7), r.buf[0]>>3&3
		n := int(binary.BigEndian.Uint16(r.buf[2:4]))
		if (op != OpReadRsp && op != OpWriteRsp) || ver > Version2 || r.buf[0]>>5 != 0 || n == 0 || HeaderSize+n > maxRawResponse {
			r.buf = r.buf[1:]
			continue
		}
		if len(r.buf) < HeaderSize+n {
			break
		}
		body := r.buf[HeaderSize : HeaderSize+n]
		if body[0]>>5 != 5 || cbor.Wellformed(body) != nil { // major type 5: a map
			r.buf = r.buf[1:]
			continue
		}
		out = append(out, bytes.Clone(r.buf[:HeaderSize+n]))
		r.buf = r.buf[HeaderSize+n:]
	}
	if len(r.buf) == 0 {
		r.buf = nil
	}
	return out
}

// Idle is told that the line went quiet: a partial packet held now was cut short (or
// began with noise that looked like a header), so its first byte is dropped and the rest
// is searched again.
func (r *RawDecoder) Idle() [][]byte {
	if len(r.buf) == 0 {
		return nil
	}
	r.buf = r.buf[1:]
	return r.Write(nil)
}

// Pending is how many bytes the decoder holds of an unfinished packet.
func (r *RawDecoder) Pending() int { return len(r.buf) }
