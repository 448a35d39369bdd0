package smp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Options tune a Driver.
type Options struct {
	// Timeout is how long one request waits for its response before it is sent again
	// (same sequence number). 0 means 2 s: an upload chunk of 2 KiB takes a quarter of a
	// second on the wire at 115200 baud, plus the device's flash write.
	Timeout time.Duration
	// Retries is how many times a request is sent again after a timeout; 0 means 3.
	Retries int
	// FrameSize is the console frame size requests are cut into: Frame127 (default,
	// Zephyr and MCUboot) or Frame128.
	FrameSize int
	// Version is the SMP version of requests: Version1 (default; every device answers
	// it) or Version2.
	Version uint8
	// FallbackBufferSize is assumed when an application does not answer mcumgr params
	// (off by default in Zephyr): 0 means 384, CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE's
	// default, the smallest a stock Zephyr build has.
	FallbackBufferSize int
	// RecoveryBufferSize is assumed in MCUboot serial recovery when it does not answer
	// mcumgr params (MCUBOOT_BOOT_MGMT_MCUMGR_PARAMS is off by default): 0 means 512,
	// MCUBOOT_SERIAL_MAX_RECEIVE_SIZE's fallback in boot_serial.c (Zephyr's port
	// defaults CONFIG_BOOT_SERIAL_MAX_RECEIVE_SIZE to 1024).
	RecoveryBufferSize int
	// Transport is TransportAuto (default), TransportConsole or TransportRaw.
	Transport string
	// StopAndWait sends one upload chunk at a time and waits for its answer, as mcumgr's
	// Go command line and smpclient do: the reference the adaptive window is measured
	// against.
	StopAndWait bool
	// Baud is the link's baud rate, so that the time a request spends on the wire (a
	// 2 KiB chunk takes 3 s at 9600 baud) is added to Timeout; 0 means 115200. A USB
	// CDC-ACM link runs faster than any baud rate and needs nothing here.
	Baud int
	// Image is the MCUmgr image number Revert works on (0 for single-image devices);
	// the other verbs take it from flasher.Image.Slot.
	Image uint32
}

// Driver is MCUmgr SMP over a serial console, a flasher.Driver.
type Driver struct {
	rw  io.ReadWriter
	opt Options

	mu       sync.Mutex // one request at a time
	seq      uint8
	bufSize  int
	bufCount int    // the device's receive buffers: how many chunks may be on their way
	mode     string // "application" or "recovery", once identified
	// flush asks for a newline before the next packet: after a pulled cable or a
	// timeout the device may hold half a line, which would swallow our frame's start.
	flush bool
	// tr is the transport in use: trUnknown until a device answered (TransportAuto),
	// then trConsole or trRaw. The reader decodes what tr says.
	tr atomic.Int32
	// slowest is the longest a chunk's answer took (erase and write included), which
	// raises the upload timeout above Options.Timeout on slow parts.
	slowest time.Duration
	// first is the answer to a chunk at offset 0 that ResumeOffset sent: Write goes on
	// from it instead of sending that chunk again.
	first *firstChunk

	pending  chan inMsg // decoded messages from the reader
	readErr  chan error
	stopRead chan struct{}
	closed   sync.Once
}

var _ flasher.Driver = (*Driver)(nil)

const (
	trUnknown int32 = iota
	trConsole
	trRaw
)

// inMsg is one decoded message and the framing it came in.
type inMsg struct {
	b   []byte
	raw bool
}

type firstChunk struct {
	sha [32]byte
	off int64
}

// New starts a driver on an open link. rw may return (0, nil) from Read on timeouts, as
// go.bug.st/serial does; Close closes rw when it is an io.Closer.
func New(rw io.ReadWriter, opt Options) *Driver {
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	if opt.Retries <= 0 {
		opt.Retries = 3
	}
	if opt.FrameSize == 0 {
		opt.FrameSize = Frame127
	}
	if opt.FallbackBufferSize <= 0 {
		opt.FallbackBufferSize = 384
	}
	if opt.RecoveryBufferSize <= 0 {
		opt.RecoveryBufferSize = 512
	}
	if opt.Baud <= 0 {
		opt.Baud = 115200
	}
	var seq [1]byte
	rand.Read(seq[:]) // a fresh sequence, so a late answer to an earlier session is not taken for ours
	d := &Driver{
		rw: rw, opt: opt, seq: seq[0], flush: true,
		pending:  make(chan inMsg, 16),
		readErr:  make(chan error, 1),
		stopRead: make(chan struct{}),
	}
	switch opt.Transport {
	case TransportConsole:
		d.tr.Store(trConsole)
	case TransportRaw:
		d.tr.Store(trRaw)
		d.flush = false // a newline would start a raw packet
	}
	go d.read()
	return d
}

// Transport says which transport the device answered on: TransportConsole,
// TransportRaw, or TransportAuto while nothing has answered yet.
func (d *Driver) Transport() string {
	switch d.tr.Load() {
	case trConsole:
		return TransportConsole
	case trRaw:
		return TransportRaw
	}
	return TransportAuto
}

// read runs until the link fails or the driver closes, handing decoded messages over.
func (d *Driver) read() {
	var dec FrameDecoder
	var raw RawDecoder
	buf := make([]byte, 4096)
	for {
		n, err := d.rw.Read(buf)
		var msgs []inMsg
		tr := d.tr.Load()
		if n > 0 {
			if tr != trRaw {
				ms, _ := dec.Write(buf[:n]) // a garbled answer is dropped; the request is sent again
				for _, m := range ms {
					msgs = append(msgs, inMsg{b: m})
				}
			}
			if tr != trConsole {
				for _, m := range raw.Write(buf[:n]) {
					msgs = append(msgs, inMsg{b: m, raw: true})
				}
			}
		} else if err == nil && tr != trConsole && raw.Pending() > 0 {
			// The line went quiet with a partial raw packet held: noise, or an answer cut
			// short. Search the rest again.
			for _, m := range raw.Idle() {
				msgs = append(msgs, inMsg{b: m, raw: true})
			}
		}
		for _, m := range msgs {
			select {
			case d.pending <- m:
			case <-d.stopRead:
				return
			}
		}
		if err != nil {
			d.readErr <- err
			return
		}
		select {
		case <-d.stopRead:
			return
		default:
		}
	}
}

// Protocol names the protocol.
func (d *Driver) Protocol() string { return "smp" }

// Capabilities: everything MCUmgr with MCUboot offers.
func (d *Driver) Capabilities() flasher.Capabilities {
	return flasher.Capabilities{Resume: true, Check: true, Test: true, Confirm: true, Revert: true, Reset: true, Erase: true, Recovery: true}
}

// Close stops the driver and closes the link when it can be closed.
func (d *Driver) Close() error {
	var err error
	d.closed.Do(func() {
		close(d.stopRead)
		if c, ok := d.rw.(io.Closer); ok {
			err = c.Close()
		}
	})
	return err
}

// LinkError is the link failing or the device not answering: worth a reconnect and a retry.
type LinkError struct {
	Command string
	Err     error
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("%s: %v; check the cable and that the device is powered, then retry", e.Command, e.Err)
}
func (e *LinkError) Unwrap() error   { return e.Err }
func (e *LinkError) Transient() bool { return true }

// errNoAnswer is the device staying silent through every retry.
var errNoAnswer = errors.New("no answer from the device")

// Request sends one request and decodes its response into resp (a pointer to a response
// type embedding Status), returning a *DeviceError when the device refused. A timeout
// sends the same bytes again with the same sequence number; answers with other sequence
// numbers (late answers to earlier tries) are dropped.
func (d *Driver) Request(ctx context.Context, op Op, group uint16, id uint8, req, resp any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.request(ctx, op, group, id, req, resp)
}

func (d *Driver) request(ctx context.Context, op Op, group uint16, id uint8, req, resp any) error {
	out, err := d.prepare(op, group, id, req)
	if err != nil {
		return err
	}
	for try := 0; try <= d.opt.Retries; try++ {
		n, err := d.send(out, try)
		if err != nil {
			return err
		}
		body, err := d.await(ctx, out, d.timeout(n))
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		return decodeResponse(out.name, group, id, body, resp)
	}
	return &LinkError{Command: out.name, Err: fmt.Errorf("%w after %d tries of %v", errNoAnswer, d.opt.Retries+1, d.opt.Timeout)}
}

// outgoing is one encoded request, kept to be sent again as it is.
type outgoing struct {
	name string
	h    Header
	msg  []byte // the SMP message: what the raw transport sends
	pkt  []byte // the message in console frames
	off  int64  // upload chunks: where the chunk starts and how long it is
	n    int
	sent time.Time // when it last went out
}

func (d *Driver) prepare(op Op, group uint16, id uint8, req any) (*outgoing, error) {
	name := CommandName(group, id)
	body, err := Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.seq++
	h := Header{Op: op, Version: d.opt.Version, Group: group, Seq: d.seq, ID: id}
	msg := BuildMessage(h, body)
	return &outgoing{name: name, h: h, msg: msg, pkt: EncodePacket(msg, d.opt.FrameSize)}, nil
}

// rawTry says whether try number try of a request goes out raw: always on the raw
// transport, never on the console, every other try while neither has answered yet
// (the console first: most devices speak it, and a raw device drops a console frame
// as noise, as a console device ignores a raw packet).
func (d *Driver) rawTry(try int) bool {
	switch d.tr.Load() {
	case trRaw:
		return true
	case trConsole:
		return false
	}
	return try%2 == 1
}

// send writes o, raw or in console frames as rawTry says, and returns how many bytes
// went out.
func (d *Driver) send(o *outgoing, try int) (int, error) {
	out := o.pkt
	if d.rawTry(try) {
		out = o.msg
	} else if d.flush {
		out = append([]byte{'\n'}, o.pkt...)
		d.flush = false
	}
	o.sent = time.Now()
	if _, err := d.rw.Write(out); err != nil {
		d.flush = true
		return 0, &LinkError{Command: o.name, Err: err}
	}
	return len(out), nil
}

// matches says whether m answers o, and settles the transport on the first answer.
func (d *Driver) matches(m inMsg, o *outgoing) ([]byte, bool) {
	rh, rbody, err := ParseMessage(m.b)
	if err != nil || rh.Seq != o.h.Seq || rh.Group != o.h.Group || rh.ID != o.h.ID || rh.Op != o.h.Op+1 {
		return nil, false
	}
	if m.raw {
		d.tr.CompareAndSwap(trUnknown, trRaw)
	} else {
		d.tr.CompareAndSwap(trUnknown, trConsole)
	}
	if (d.tr.Load() == trRaw) != m.raw {
		return nil, false
	}
	return rbody, true
}

var errTimeout = errors.New("timeout")

// timeout is how long to wait for an answer with n request bytes still on their way:
// the link's write returns once the bytes are in the driver's buffer, not on the wire.
// The wait is Options.Timeout or twice the slowest answer an upload chunk has had,
// whichever is longer.
func (d *Driver) timeout(n int) time.Duration {
	return max(d.opt.Timeout, 2*d.slowest) + time.Duration(n)*10*time.Second/time.Duration(d.opt.Baud)
}

// awaitFlight waits for the answer to any chunk in flight and says which it answers.
func (d *Driver) awaitFlight(ctx context.Context, flight []*outgoing) (int, []byte, error) {
	n := 0
	for _, o := range flight {
		n += len(o.pkt)
	}
	timer := time.NewTimer(d.timeout(n))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case err := <-d.readErr:
			d.readErr <- err
			return 0, nil, &LinkError{Command: flight[0].name, Err: err}
		case <-timer.C:
			d.flush = true
			return 0, nil, errTimeout
		case m := <-d.pending:
			for i, o := range flight {
				if body, ok := d.matches(m, o); ok {
					return i, body, nil
				}
			}
		}
	}
}

// await waits for the response to o (same sequence number, group and command); other
// messages are dropped. It returns errTimeout when none came in time.
func (d *Driver) await(ctx context.Context, o *outgoing, timeout time.Duration) ([]byte, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-d.readErr:
			d.readErr <- err // every later request fails the same way
			return nil, &LinkError{Command: o.name, Err: err}
		case <-timer.C:
			d.flush = true
			return nil, errTimeout
		case m := <-d.pending:
			if body, ok := d.matches(m, o); ok {
				return body, nil
			}
		}
	}
}

func decodeResponse(name string, group uint16, id uint8, body []byte, resp any) error {
	var st Status
	if err := Unmarshal(body, &st); err != nil {
		return fmt.Errorf("%s: response is not valid CBOR: %w", name, err)
	}
	if err := st.AsError(group, id); err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	if err := Unmarshal(body, resp); err != nil {
		return fmt.Errorf("%s: response does not decode: %w", name, err)
	}
	return nil
}

// isNotSupported says the device does not know the command.
func isNotSupported(err error) bool {
	var de *DeviceError
	return errors.As(err, &de) && de.NotSupported()
}

// Identify asks the device what it is. Every optional command is used when it answers
// and never required (stock Zephyr has none of them): mcumgr params gives the buffer
// size and count; os info "i" the hardware id (Zephyr's hardware platform: the board);
// os bootloader info the bootloader; image state, which every device answers, the slots.
// A device that reports no active slot and no os info is MCUboot serial recovery. Without
// params the buffer is the mode's smallest default (Options.FallbackBufferSize,
// Options.RecoveryBufferSize) and one chunk is sent at a time.
func (d *Driver) Identify(ctx context.Context) (*flasher.Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := &flasher.Identity{Protocol: "smp"}

	var params ParamsResponse
	err := d.request(ctx, OpRead, GroupOS, OSParams, struct{}{}, &params)
	if err != nil && !optionalRefused(err) {
		return nil, err
	}
	gotParams := err == nil && params.BufSize > 0

	var info InfoResponse
	infoErr := d.request(ctx, OpRead, GroupOS, OSInfo, InfoRequest{Format: "i"}, &info)
	if infoErr != nil && !optionalRefused(infoErr) {
		return nil, infoErr
	}
	if infoErr == nil {
		id.HardwareID = strings.TrimSpace(info.Output)
	}

	var state ImageStateResponse
	if err := d.request(ctx, OpRead, GroupImage, ImageState, struct{}{}, &state); err != nil {
		return nil, err
	}
	anyActive := false
	for _, s := range state.Images {
		anyActive = anyActive || s.Active
		id.Slots = append(id.Slots, flasher.Slot{
			Image: int(s.Image), Slot: int(s.Slot), Version: s.Version, Hash: s.Hash,
			Bootable: s.Bootable, Pending: s.Pending, Confirmed: s.Confirmed, Active: s.Active, Permanent: s.Permanent,
		})
		if s.Slot == 0 {
			if id.Components == nil {
				id.Components = map[string]string{}
			}
			id.Components[fmt.Sprintf("image%d", s.Image)] = s.Version
			if s.Image == 0 {
				// Image 0 is the application on MCUboot devices; bundles name components in
				// the field's words ("requires app >=1.2.0"), as the YMODEM driver reports them.
				id.Components["app"] = s.Version
			}
		}
	}

	if infoErr != nil && !anyActive {
		d.mode = flasher.ModeRecovery
		id.Bootloader = "MCUboot"
	} else {
		d.mode = flasher.ModeApplication
		var bl BootloaderInfoResponse
		switch err := d.request(ctx, OpRead, GroupOS, OSBootloaderInfo, BootloaderInfoRequest{}, &bl); {
		case err == nil:
			id.Bootloader = bl.Bootloader
		case !optionalRefused(err):
			return nil, err
		}
	}
	switch {
	case gotParams:
		d.bufSize, d.bufCount = int(params.BufSize), int(params.BufCount)
	case d.mode == flasher.ModeRecovery:
		d.bufSize, d.bufCount = d.opt.RecoveryBufferSize, 1
	default:
		d.bufSize, d.bufCount = d.opt.FallbackBufferSize, 1
	}
	id.BufferSize = d.bufSize
	id.Mode = d.mode
	id.Transport = d.Transport()
	return id, nil
}

// optionalRefused says a device refused an optional command: not supported (rc 8, the
// Kconfig option off), or any other refusal of a command nothing depends on.
func optionalRefused(err error) bool {
	var de *DeviceError
	return errors.As(err, &de)
}

// ensureIdentified learns the buffer size and mode before the first transfer.
func (d *Driver) ensureIdentified(ctx context.Context) error {
	d.mu.Lock()
	known := d.bufSize > 0
	d.mu.Unlock()
	if known {
		return nil
	}
	_, err := d.Identify(ctx)
	return err
}

// BufferSize returns the buffer size Identify learned (0 before).
func (d *Driver) BufferSize() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bufSize
}

// ChunkSize returns the largest data length for an upload request at off such that the
// whole packet the device decodes (header, CBOR body, and on the console the length
// prefix and CRC) fits the device's buffer. It measures the encoded request rather than
// guessing its overhead.
func (d *Driver) ChunkSize(img *flasher.Image, off int64) int {
	return chunkSize(d.bufSize-d.framing(), d.uploadRequest(img, off, nil))
}

// framing is what the transport adds to a message inside the device's buffer: the
// console's length prefix and CRC, nothing on the raw transport.
func (d *Driver) framing() int {
	if d.tr.Load() == trRaw {
		return 0
	}
	return 4
}

func chunkSize(budget int, req UploadRequest) int {
	budget -= HeaderSize
	req.Data = nil
	empty, err := Marshal(req)
	if err != nil {
		return 0
	}
	// An empty byte string is one byte; n bytes cost n plus a 1, 2, 3 or 5-byte head.
	n := budget - len(empty)
	for n > 0 && len(empty)-1+bstrHead(n)+n > budget {
		n--
	}
	return max(n, 0)
}

func bstrHead(n int) int {
	switch {
	case n < 24:
		return 1
	case n < 256:
		return 2
	case n < 65536:
		return 3
	}
	return 5
}

func (d *Driver) uploadRequest(img *flasher.Image, off int64, data []byte) UploadRequest {
	req := UploadRequest{Off: uint64(off), Data: data}
	if data == nil {
		req.Data = []byte{}
	}
	if off == 0 {
		n := uint64(img.Size)
		imgNo := uint32(img.Slot)
		req.Len, req.Image = &n, &imgNo
		req.SHA = img.SHA256[:]
	}
	return req
}

// eraseAllowance is how much longer than other chunks the chunk at offset 0 may take to
// be answered: the device erases before it answers, a stock Zephyr application the pages
// the image covers and its trailer's (without CONFIG_IMG_ERASE_PROGRESSIVELY), MCUboot
// serial recovery its whole slot (without CONFIG_BOOT_ERASE_PROGRESSIVELY), whose size
// the client does not know: twice the image and at least 256 KiB is assumed. 25 µs per
// byte covers the slow parts (nRF52840: 85 ms per 4 KiB page, 21 µs per byte; STM32F4:
// 1-2 s per 128 KiB sector), and a second covers a trailer in a sector of its own.
func (d *Driver) eraseAllowance(img *flasher.Image) time.Duration {
	n := img.Size
	if d.mode == flasher.ModeRecovery {
		n = max(2*n, 256<<10)
	}
	return time.Duration(n)*25*time.Microsecond + time.Second
}

// ResumeOffset starts the upload and returns where the device stands. Stock Zephyr looks
// at resume only in a first chunk that carries the image header (an offset-0 chunk with
// fewer than 32 bytes is refused, rc 3), so the real first chunk is sent (off 0, len,
// sha, data): a device holding part of an upload with the same sha answers the offset it
// reached, without writing; any other starts a new upload (erasing first) and answers
// the end of that chunk. Only a resumed offset is returned; a fresh start returns 0 and
// the next Write goes on after the chunk that was already sent. MCUboot serial recovery
// knows no resume and erases its slot on every chunk at offset 0, so there the answer is
// 0 without asking.
func (d *Driver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	if err := d.ensureIdentified(ctx); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.first = nil
	if d.mode == flasher.ModeRecovery {
		return 0, nil
	}
	o, err := d.chunk(img, 0)
	if err != nil {
		return 0, err
	}
	off, err := d.sendOne(ctx, img, o)
	if err != nil {
		return 0, err
	}
	if off == int64(o.n) {
		d.first = &firstChunk{sha: img.SHA256, off: off}
		return 0, nil
	}
	return off, nil
}

// window is the adaptive number of upload chunks on their way, like TCP's congestion
// window: it starts at one, grows by one after need answers in a row came on time, up to
// what the device's buffers allow, and falls back to one at once after a loss or a
// timeout, when need doubles, so that a line that loses what is sent while the device is
// busy (a UART whose CPU the flash controller stalls) settles at stop-and-wait and only
// rarely tries more.
type window struct {
	n, max       int
	streak, need int
}

func newWindow(max int) window { return window{n: 1, max: max, need: 4} }

func (w *window) onTime() {
	if w.streak++; w.streak >= w.need && w.n < w.max {
		w.n++
		w.streak = 0
	}
}

func (w *window) lost() {
	if w.n > 1 {
		w.need = min(2*w.need, 1024)
	}
	w.n, w.streak = 1, 0
}

// Write uploads img from byte from, in chunks as large as the device's buffer allows.
// Chunks go out through an adaptive window (see window; Options.StopAndWait keeps it at
// one): while the device writes one chunk to flash the next are already on the wire, up
// to one less than the receive buffers mcumgr params reported (at most 3; 1 when the
// device did not say). Zephyr handles requests in order, so answers come back in order.
// The device's answer says where to go on; when it differs from what was sent (a chunk
// lost, MCUboot writing only the aligned part of one) the chunks in flight are dropped
// and the upload goes on from the device's offset, so nothing it holds is sent twice.
// The chunk at offset 0 goes alone, with a timeout that allows for the erase before it
// is answered, and is not sent again while the device may still be erasing.
func (d *Driver) Write(ctx context.Context, img *flasher.Image, from int64, progress func(int64)) (int64, error) {
	if err := d.ensureIdentified(ctx); err != nil {
		return from, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	acked := from
	if f := d.first; f != nil && from == 0 && f.sha == img.SHA256 {
		acked = f.off // ResumeOffset sent the first chunk
		if progress != nil {
			progress(acked)
		}
	}
	d.first = nil
	if acked == 0 && img.Size > 0 {
		o, err := d.chunk(img, 0)
		if err != nil {
			return 0, err
		}
		if acked, err = d.sendOne(ctx, img, o); err != nil {
			return 0, err
		}
		if progress != nil && acked > 0 {
			progress(acked)
		}
	}
	// On the raw UART transport one chunk at a time: Zephyr's raw receiver drops
	// everything it holds when one UART fragment carries more than one packet
	// (serial_util.c), which two chunks back to back do.
	maxWin := 1
	if !d.opt.StopAndWait && d.bufCount > 1 && d.tr.Load() != trRaw {
		maxWin = min(d.bufCount-1, 3)
	}
	win := newWindow(maxWin)
	next := acked
	var flight []*outgoing
	stuck := 0 // answers in a row that did not move the offset forward
	for acked < img.Size {
		for len(flight) < win.n && next < img.Size {
			o, err := d.chunk(img, next)
			if err != nil {
				return acked, err
			}
			if _, err := d.send(o, 0); err != nil {
				return acked, err
			}
			flight = append(flight, o)
			next += int64(o.n)
		}
		o := flight[0]
		var off int64
		i, body, err := d.awaitFlight(ctx, flight)
		switch {
		case errors.Is(err, errTimeout):
			// Lost on the way there or back: ask again, one at a time, with retries.
			win.lost()
			flight = nil
			if off, err = d.writeOne(ctx, img, acked); err != nil {
				return acked, err
			}
		case err != nil:
			return acked, err
		default:
			// An answer to a later chunk means the earlier ones were lost (the device
			// answers in order); its offset is where the device stands.
			o, flight = flight[i], flight[i+1:]
			if i > 0 {
				flight = nil
			}
			if off, err = uploadAnswer(o.name, body, img); err != nil {
				return acked, err
			}
			if i == 0 && off == o.off+int64(o.n) {
				d.observe(time.Since(o.sent))
				win.onTime()
			} else if i > 0 || off > o.off+int64(o.n) || off < o.off {
				win.lost()
			}
		}
		if off != o.off+int64(o.n) || len(flight) == 0 {
			flight, next = nil, off // answers to the dropped chunks are ignored by sequence number
		}
		if off > acked {
			stuck = 0
		} else if stuck++; stuck > 2*d.opt.Retries+maxWin {
			return off, fmt.Errorf("image upload: the device keeps asking for offset %d of %s and takes nothing; reset it and start the upload again", off, img.Name)
		}
		if off != acked && progress != nil {
			progress(off)
		}
		acked = off
	}
	return acked, nil
}

// observe notes how long an answer took, so that the upload timeout follows a slow part
// (a sector erase in the middle of a progressive erase) instead of a fixed figure.
func (d *Driver) observe(rtt time.Duration) {
	d.slowest = min(max(d.slowest, rtt), time.Minute)
}

// chunk encodes the upload request at off with as much data as fits the device's buffer.
// In serial recovery the data is cut to a multiple of 16 bytes (but the last chunk):
// MCUboot writes only the part of a chunk its flash's write alignment allows and answers
// the smaller offset.
func (d *Driver) chunk(img *flasher.Image, off int64) (*outgoing, error) {
	n := chunkSize(d.bufSize-d.framing(), d.uploadRequest(img, off, nil))
	if n <= 0 {
		return nil, fmt.Errorf("image upload: the device's buffer of %d bytes cannot carry any data; it reported a buffer too small for uploads", d.bufSize)
	}
	if d.mode == flasher.ModeRecovery && int64(n) < img.Size-off && n > 16 {
		n &^= 15
	}
	n = int(min(int64(n), img.Size-off))
	data := make([]byte, n)
	if _, err := img.Data.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("image %s: read at %d: %w", img.Name, off, err)
	}
	o, err := d.prepare(OpWrite, GroupImage, ImageUpload, d.uploadRequest(img, off, data))
	if err != nil {
		return nil, err
	}
	o.off, o.n = off, n
	return o, nil
}

// writeOne sends the chunk at off with retries and returns the device's offset.
func (d *Driver) writeOne(ctx context.Context, img *flasher.Image, off int64) (int64, error) {
	o, err := d.chunk(img, off)
	if err != nil {
		return off, err
	}
	return d.sendOne(ctx, img, o)
}

// sendOne sends one chunk with retries. The chunk at offset 0 waits for the erase as
// well, and each retry of it waits twice as long as the one before: a resend that
// arrives after a slow erase finished would start the erase again.
func (d *Driver) sendOne(ctx context.Context, img *flasher.Image, o *outgoing) (int64, error) {
	extra := time.Duration(0)
	if o.off == 0 {
		extra = d.eraseAllowance(img)
	}
	for try := 0; try <= d.opt.Retries; try++ {
		n, err := d.send(o, try)
		if err != nil {
			return o.off, err
		}
		body, err := d.await(ctx, o, d.timeout(n)+extra)
		if errors.Is(err, errTimeout) {
			extra *= 2
			continue
		}
		if err != nil {
			return o.off, err
		}
		off, err := uploadAnswer(o.name, body, img)
		if err == nil && o.off > 0 && try == 0 && off == o.off+int64(o.n) {
			d.observe(time.Since(o.sent))
		}
		return off, err
	}
	return o.off, &LinkError{Command: o.name, Err: fmt.Errorf("%w after %d tries of %v", errNoAnswer, d.opt.Retries+1, d.opt.Timeout)}
}

func uploadAnswer(name string, body []byte, img *flasher.Image) (int64, error) {
	var resp UploadResponse
	if err := decodeResponse(name, GroupImage, ImageUpload, body, &resp); err != nil {
		return 0, err
	}
	if resp.Off == nil || *resp.Off > uint64(img.Size) {
		return 0, fmt.Errorf("image upload: device answered offset %v for the %d-byte %s; start the upload again", resp.Off, img.Size, img.Name)
	}
	if resp.Match != nil && !*resp.Match {
		return 0, fmt.Errorf("image upload: the device's SHA-256 of the %d bytes it received differs from %s's; upload again from the start", img.Size, img.Name)
	}
	return int64(*resp.Off), nil
}

// imageHash is the MCUboot image hash (SHA256 TLV) of img, what image state reports; the
// TUF target hash (img.SHA256) covers the whole file and differs.
func imageHash(img *flasher.Image) ([]byte, error) {
	m, err := mcuboot.Parse(img.Data, img.Size)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return m.ImageHash, nil
}

func (d *Driver) readState(ctx context.Context) (*ImageStateResponse, error) {
	var st ImageStateResponse
	if err := d.request(ctx, OpRead, GroupImage, ImageState, struct{}{}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func findSlot(st *ImageStateResponse, hash []byte) *SlotState {
	for i := range st.Images {
		if bytes.Equal(st.Images[i].Hash, hash) {
			return &st.Images[i]
		}
	}
	return nil
}

// Check confirms the device holds img whole: image state lists its hash in the secondary
// slot (in the primary in serial recovery, which uploads there).
func (d *Driver) Check(ctx context.Context, img *flasher.Image) error {
	want, err := imageHash(img)
	if err != nil {
		return err
	}
	if err := d.ensureIdentified(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.readState(ctx)
	if err != nil {
		return err
	}
	slot := uint32(1)
	if d.mode == flasher.ModeRecovery {
		slot = 0
	}
	for _, s := range st.Images {
		if s.Image == uint32(img.Slot) && s.Slot == slot {
			if bytes.Equal(s.Hash, want) {
				return nil
			}
			return fmt.Errorf("image %s: slot %d holds image hash %s, not %s; upload it again", img.Name, slot, short(s.Hash), short(want))
		}
	}
	return fmt.Errorf("image %s: the device lists no valid image in slot %d (image hash %s expected); upload it again", img.Name, slot, short(want))
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 16 {
		s = s[:16] + "…"
	}
	if s == "" {
		s = "(none)"
	}
	return s
}

// Activate marks img for one trial boot (image state write, test by hash). In serial
// recovery the image was written to the primary slot and boots as it is.
func (d *Driver) Activate(ctx context.Context, img *flasher.Image) error {
	want, err := imageHash(img)
	if err != nil {
		return err
	}
	if err := d.ensureIdentified(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode == flasher.ModeRecovery {
		return nil
	}
	var st ImageStateResponse
	if err := d.request(ctx, OpWrite, GroupImage, ImageState, ImageStateWrite{Hash: want}, &st); err != nil {
		return err
	}
	if s := findSlot(&st, want); s == nil || !(s.Pending || s.Active) {
		return fmt.Errorf("image %s: the device accepted the test request but does not show the image pending; read its image state and retry", img.Name)
	}
	return nil
}

// Confirm makes the running image permanent (image state write, confirm). With img, it
// first checks that img is the one running.
func (d *Driver) Confirm(ctx context.Context, img *flasher.Image) error {
	var want []byte
	if img != nil && img.Data != nil {
		var err error
		if want, err = imageHash(img); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want != nil {
		st, err := d.readState(ctx)
		if err != nil {
			return err
		}
		if s := findSlot(st, want); s == nil || !s.Active {
			return fmt.Errorf("image %s: not the running image, so it is not confirmed; the device booted another image (reverted?)", img.Name)
		}
	}
	var st ImageStateResponse
	return d.request(ctx, OpWrite, GroupImage, ImageState, ImageStateWrite{Confirm: true}, &st)
}

// Revert prepares the way back to the previous image, as far as MCUboot and the device's
// MCUmgr allow; the reset that takes it there is the engine's (Reset):
//   - a trial boot running (the running image not confirmed): nothing to do, the
//     bootloader swaps the previous image back at the reset (the one way stock Zephyr
//     has: its img_mgmt refuses to confirm anything but the running image, or to erase a
//     slot a revert needs);
//   - a test requested but not booted yet: erase the secondary slot, which cancels it.
//     Stock Zephyr refuses that (no free slot, without
//     CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING): then the test image boots once at the
//     next reset and, never confirmed, is swapped back at the reset after, which the
//     error says;
//   - then confirm the running primary image, so what runs stays.
func (d *Driver) Revert(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.readState(ctx)
	if err != nil {
		return err
	}
	for _, s := range st.Images {
		if s.Image == d.opt.Image && s.Slot == 0 && s.Active && !s.Confirmed {
			return nil
		}
	}
	for _, s := range st.Images {
		if s.Image == d.opt.Image && s.Slot == 1 && s.Pending {
			slot := uint32(1)
			err := d.request(ctx, OpWrite, GroupImage, ImageErase, EraseRequest{Slot: &slot}, nil)
			var de *DeviceError
			if errors.As(err, &de) {
				return &RevertPendingError{Err: de}
			}
			if err != nil {
				return err
			}
		}
	}
	var after ImageStateResponse
	return d.request(ctx, OpWrite, GroupImage, ImageState, ImageStateWrite{Confirm: true}, &after)
}

// RevertPendingError is a device that will not cancel a test it has pending (stock
// Zephyr): the running image is still the previous one, the test image boots once at the
// next reset, and MCUboot swaps the previous one back at the reset after unless it is
// confirmed.
type RevertPendingError struct{ Err *DeviceError }

func (e *RevertPendingError) Error() string {
	return fmt.Sprintf("the device will not cancel the image pending for test (%s refused: %s); "+
		"it still runs its previous image, the pending image boots once at the next reset, and MCUboot "+
		"brings the previous image back at the reset after that unless the new one is confirmed: "+
		"reset the device twice without confirming", e.Err.Command, e.Err.Meaning())
}
func (e *RevertPendingError) Unwrap() error { return e.Err }

// Reset reboots the device (os reset). The link stays open; the device answers again
// once it has booted.
func (d *Driver) Reset(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bufSize = 0 // the device may come back in another mode
	return d.request(ctx, OpWrite, GroupOS, OSReset, ResetRequest{}, nil)
}

// Erase erases the secondary slot (image erase).
func (d *Driver) Erase(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot := uint32(1)
	return d.request(ctx, OpWrite, GroupImage, ImageErase, EraseRequest{Slot: &slot}, nil)
}

// Echo sends text and returns the device's echo: a cheap "are you there".
func (d *Driver) Echo(ctx context.Context, text string) (string, error) {
	var r EchoResponse
	err := d.Request(ctx, OpWrite, GroupOS, OSEcho, EchoRequest{D: text}, &r)
	return r.R, err
}
