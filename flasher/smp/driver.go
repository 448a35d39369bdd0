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
	// FallbackBufferSize is assumed when the device does not answer mcumgr params
	// (MCUboot serial recovery): 0 means 512, MCUBOOT_SERIAL_MAX_RECEIVE_SIZE's
	// default in boot_serial.c, the smallest in the field.
	FallbackBufferSize int
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

	pending  chan []byte // decoded messages from the reader
	readErr  chan error
	stopRead chan struct{}
	closed   sync.Once
}

var _ flasher.Driver = (*Driver)(nil)

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
		opt.FallbackBufferSize = 512
	}
	if opt.Baud <= 0 {
		opt.Baud = 115200
	}
	var seq [1]byte
	rand.Read(seq[:]) // a fresh sequence, so a late answer to an earlier session is not taken for ours
	d := &Driver{
		rw: rw, opt: opt, seq: seq[0], flush: true,
		pending:  make(chan []byte, 16),
		readErr:  make(chan error, 1),
		stopRead: make(chan struct{}),
	}
	go d.read()
	return d
}

// read runs until the link fails or the driver closes, handing decoded messages over.
func (d *Driver) read() {
	var dec FrameDecoder
	buf := make([]byte, 4096)
	for {
		n, err := d.rw.Read(buf)
		if n > 0 {
			msgs, _ := dec.Write(buf[:n]) // a garbled answer is dropped; the request is sent again
			for _, m := range msgs {
				select {
				case d.pending <- m:
				case <-d.stopRead:
					return
				}
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
		if err := d.send(out); err != nil {
			return err
		}
		body, err := d.await(ctx, out, d.timeout(len(out.pkt)))
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
	pkt  []byte
	off  int64 // upload chunks: where the chunk starts and how long it is
	n    int
}

func (d *Driver) prepare(op Op, group uint16, id uint8, req any) (*outgoing, error) {
	name := CommandName(group, id)
	body, err := Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.seq++
	h := Header{Op: op, Version: d.opt.Version, Group: group, Seq: d.seq, ID: id}
	return &outgoing{name: name, h: h, pkt: EncodePacket(BuildMessage(h, body), d.opt.FrameSize)}, nil
}

func (d *Driver) send(o *outgoing) error {
	out := o.pkt
	if d.flush {
		out = append([]byte{'\n'}, o.pkt...)
		d.flush = false
	}
	if _, err := d.rw.Write(out); err != nil {
		d.flush = true
		return &LinkError{Command: o.name, Err: err}
	}
	return nil
}

var errTimeout = errors.New("timeout")

// timeout is how long to wait for an answer with n request bytes still on their way:
// the link's write returns once the bytes are in the driver's buffer, not on the wire.
func (d *Driver) timeout(n int) time.Duration {
	return d.opt.Timeout + time.Duration(n)*10*time.Second/time.Duration(d.opt.Baud)
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
			rh, rbody, err := ParseMessage(m)
			if err != nil {
				continue
			}
			for i, o := range flight {
				if rh.Seq == o.h.Seq && rh.Group == o.h.Group && rh.ID == o.h.ID && rh.Op == o.h.Op+1 {
					return i, rbody, nil
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
			rh, rbody, err := ParseMessage(m)
			if err != nil || rh.Seq != o.h.Seq || rh.Group != o.h.Group || rh.ID != o.h.ID || rh.Op != o.h.Op+1 {
				continue
			}
			return rbody, nil
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

// Identify asks the device what it is. mcumgr params gives the buffer size; os info "i"
// the hardware id (Zephyr's hardware platform: the board); os bootloader info the
// bootloader; image state the slots. A device that refuses os info as not supported and
// reports no active slot is MCUboot serial recovery.
func (d *Driver) Identify(ctx context.Context) (*flasher.Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := &flasher.Identity{Protocol: "smp"}

	var params ParamsResponse
	err := d.request(ctx, OpRead, GroupOS, OSParams, struct{}{}, &params)
	switch {
	case err == nil && params.BufSize > 0:
		d.bufSize, d.bufCount = int(params.BufSize), int(params.BufCount)
	case err == nil || isNotSupported(err):
		d.bufSize, d.bufCount = d.opt.FallbackBufferSize, 1
	default:
		return nil, err
	}
	id.BufferSize = d.bufSize

	var info InfoResponse
	infoErr := d.request(ctx, OpRead, GroupOS, OSInfo, InfoRequest{Format: "i"}, &info)
	if infoErr != nil && !isNotSupported(infoErr) {
		return nil, infoErr
	}
	id.HardwareID = strings.TrimSpace(info.Output)

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
		case !isNotSupported(err):
			var de *DeviceError
			if !errors.As(err, &de) {
				return nil, err
			}
		}
	}
	id.Mode = d.mode
	return id, nil
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
// whole decoded packet (length prefix, header, CBOR body, CRC) fits the device's buffer.
// It measures the encoded request rather than guessing its overhead.
func (d *Driver) ChunkSize(img *flasher.Image, off int64) int {
	return chunkSize(d.bufSize, d.uploadRequest(img, off, nil))
}

func chunkSize(bufSize int, req UploadRequest) int {
	budget := bufSize - 4 - HeaderSize
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

// ResumeOffset sends the first-chunk form (off 0, len, sha, no data) and returns the
// offset the device answers: Zephyr continues an upload of the same sha where it stopped,
// and starts a new one (offset 0) otherwise. MCUboot serial recovery knows no resume and
// would erase the slot on that request, so in recovery the answer is 0 without asking.
func (d *Driver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	if err := d.ensureIdentified(ctx); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode == flasher.ModeRecovery {
		return 0, nil
	}
	var resp UploadResponse
	if err := d.request(ctx, OpWrite, GroupImage, ImageUpload, d.uploadRequest(img, 0, nil), &resp); err != nil {
		return 0, err
	}
	if resp.Off == nil || *resp.Off > uint64(img.Size) {
		return 0, fmt.Errorf("image upload: device answered offset %v for a %d-byte image", resp.Off, img.Size)
	}
	return int64(*resp.Off), nil
}

// Write uploads img from byte from, in chunks as large as the device's buffer allows.
// While the device writes one chunk to flash the next ones are already on the wire: up to
// one less than the receive buffers mcumgr params reported (at most 3; 1 when the device
// did not say), as Nordic's Device Manager does. Zephyr handles requests in order, so
// answers come back in order. The device's answer says where to go on; when it differs
// from what was sent (a chunk lost, a late retry) the chunks in flight are dropped and
// the upload goes on from the device's offset, so nothing it holds is sent twice.
func (d *Driver) Write(ctx context.Context, img *flasher.Image, from int64, progress func(int64)) (int64, error) {
	if err := d.ensureIdentified(ctx); err != nil {
		return from, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	window := min(max(d.bufCount-1, 1), 3)
	acked, next := from, from
	var flight []*outgoing
	stuck := 0 // answers in a row that did not move the offset forward
	for acked < img.Size {
		// The first chunk (off 0) starts the upload; the ones behind it queue up while
		// the device erases the slot. Had the device resumed instead, it answers them
		// with its own offset and the upload goes on from there.
		for len(flight) < window && next < img.Size {
			o, err := d.chunk(img, next)
			if err != nil {
				return acked, err
			}
			if err := d.send(o); err != nil {
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
		}
		if off != o.off+int64(o.n) || len(flight) == 0 {
			flight, next = nil, off // answers to the dropped chunks are ignored by sequence number
		}
		if off > acked {
			stuck = 0
		} else if stuck++; stuck > 2*d.opt.Retries+window {
			return off, fmt.Errorf("image upload: the device keeps asking for offset %d of %s and takes nothing; reset it and start the upload again", off, img.Name)
		}
		if off != acked && progress != nil {
			progress(off)
		}
		acked = off
	}
	return acked, nil
}

// chunk encodes the upload request at off with as much data as fits the device's buffer.
func (d *Driver) chunk(img *flasher.Image, off int64) (*outgoing, error) {
	n := chunkSize(d.bufSize, d.uploadRequest(img, off, nil))
	if n <= 0 {
		return nil, fmt.Errorf("image upload: the device's buffer of %d bytes cannot carry any data; it reported a buffer too small for uploads", d.bufSize)
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
	for try := 0; try <= d.opt.Retries; try++ {
		if err := d.send(o); err != nil {
			return off, err
		}
		body, err := d.await(ctx, o, d.timeout(len(o.pkt)))
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return off, err
		}
		return uploadAnswer(o.name, body, img)
	}
	return off, &LinkError{Command: o.name, Err: fmt.Errorf("%w after %d tries of %v", errNoAnswer, d.opt.Retries+1, d.opt.Timeout)}
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

// Revert goes back to the previous image, as far as MCUboot allows:
//   - a trial boot running (the running image not confirmed): reset without confirming,
//     and the bootloader swaps the previous image back;
//   - a test requested but not booted yet: erase the secondary slot, which cancels it;
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
			return d.request(ctx, OpWrite, GroupOS, OSReset, ResetRequest{}, nil)
		}
	}
	for _, s := range st.Images {
		if s.Image == d.opt.Image && s.Slot == 1 && s.Pending {
			slot := uint32(1)
			if err := d.request(ctx, OpWrite, GroupImage, ImageErase, EraseRequest{Slot: &slot}, nil); err != nil {
				return err
			}
		}
	}
	var after ImageStateResponse
	return d.request(ctx, OpWrite, GroupImage, ImageState, ImageStateWrite{Confirm: true}, &after)
}

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
