// Package smpdev is a virtual MCUmgr device: an SMP server on a serial console, serving a
// sim/flash flash with MCUboot semantics. It answers as a Zephyr application with the os
// and image groups does, or, when the bootloader stays in serial recovery (no bootable
// image, or the recovery button held), as MCUboot's serial recovery does: echo, reset,
// image list and image upload straight into the primary slot, and "not supported" for the
// rest.
package smpdev

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
)

// DefaultBufferSize is the decoded packet (length prefix, SMP message, CRC) the device
// takes. MCUboot's boot_serial.c falls back to MCUBOOT_SERIAL_MAX_RECEIVE_SIZE 512 and
// Zephyr's MCUboot Kconfig (BOOT_SERIAL_MAX_RECEIVE_SIZE) defaults to 1024; applications
// that take uploads usually raise CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE to 2048 or more.
// 2048 is the simulator's default for both modes.
const DefaultBufferSize = 2048

// Options configure a Device.
type Options struct {
	HardwareID string // os info "i" (Zephyr's hardware platform, the board name)
	BufferSize int    // decoded packet limit; 0 means DefaultBufferSize
	BufCount   int    // reported by mcumgr params; 0 means 4
	FrameSize  int    // console frame size of responses: smp.Frame127 (default) or smp.Frame128
	// Recovery holds the recovery button: every boot stays in MCUboot serial recovery.
	Recovery bool
	// RecoveryParams makes serial recovery answer mcumgr params, as MCUboot does when
	// built with its optional parameters command.
	RecoveryParams bool
	// OnReset is called after each reboot the device does on a reset command.
	OnReset func(flash.BootResult)
	// OnResetStart is called when a reset command starts a reboot (after the answer is
	// on the wire), before the boot's own time: a USB CDC-ACM port leaves the bus here.
	OnResetStart func()
	// Profile is the firmware the device runs (profile.go); nil keeps the simulator's
	// original device. A profile sets the buffer sizes; BufferSize and RecoveryParams
	// are then ignored.
	Profile *Profile
	// Part is the flash and UART timing (flash.Part); the zero Part takes no time.
	Part flash.Part
	// Baud is the UART's line rate, for the receiver's timing (0 means 115200).
	Baud int
}

// Stats count what the device received, for tests that check how much was re-sent.
type Stats struct {
	UploadChunks int   // image upload requests handled
	UploadBytes  int64 // data bytes they carried
	Resets       int
	DroppedBytes int64 // bytes the UART lost while the device was busy or rebooting
}

// Device is one virtual device.
type Device struct {
	mu    sync.Mutex
	flash *flash.Flash
	opt   Options
	boot  flash.BootResult
	up    upload
	stats Stats
	// busy is the flash time the request being handled costs; Serve waits it out
	// before answering (the CPU is stalled) and its receiver may drop bytes meanwhile.
	busy time.Duration
	// resetUntil: the device is rebooting; its UART hears nothing until then.
	resetUntil time.Time
	busyStart  time.Time
	busyUntil  time.Time
	resetStart time.Time
	rxKept     int // bytes the receive FIFO holds in this busy spell
}

// upload is the upload in progress; like Zephyr's img_mgmt state it lives in RAM, so a
// reboot forgets it.
type upload struct {
	active bool
	slot   int
	sha    []byte
	len    uint64
	off    uint64
	hash   hash.Hash
}

// New boots the flash and returns the device running whatever the boot chose.
func New(fl *flash.Flash, opt Options) (*Device, error) {
	if opt.BufferSize <= 0 {
		opt.BufferSize = DefaultBufferSize
	}
	if opt.BufCount <= 0 {
		opt.BufCount = 4
	}
	if opt.FrameSize == 0 {
		opt.FrameSize = smp.Frame127
	}
	if opt.Profile != nil {
		if opt.Profile.BootsToRecovery {
			opt.Recovery = true
		}
		opt.BufCount = max(opt.Profile.NetBufCount, 1)
	}
	d := &Device{flash: fl, opt: opt}
	if _, err := d.Reboot(); err != nil {
		return nil, err
	}
	return d, nil
}

// Mode is what the device runs now.
func (d *Device) Mode() flash.Mode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.boot.Mode
}

// LastBoot is what the last boot did.
func (d *Device) LastBoot() flash.BootResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.boot
}

// Stats returns the counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// SetRecovery holds (or releases) the recovery button for the next boots.
func (d *Device) SetRecovery(hold bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opt.Recovery = hold
}

func (d *Device) inRecoveryLocked() bool { return d.boot.Mode == flash.ModeRecovery }

// takeBusy returns and clears the flash time of the last request.
func (d *Device) takeBusy() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.busy
	d.busy = 0
	return b
}

// Reboot runs the bootloader on the flash, forgetting any upload in progress.
func (d *Device) Reboot() (flash.BootResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rebootLocked()
}

func (d *Device) rebootLocked() (flash.BootResult, error) {
	d.up = upload{}
	res, err := d.flash.Boot(d.opt.Recovery)
	if err != nil {
		return res, fmt.Errorf("simulated device: boot: %w", err)
	}
	d.boot = res
	return res, nil
}

// Serve answers SMP requests on rw until ctx ends or rw fails. rw may return (0, nil) on
// read timeouts. Serve cannot interrupt a Read that blocks: close rw to stop it for good.
func Serve(ctx context.Context, rw io.ReadWriter, dev *Device) error {
	type chunk struct {
		b   []byte
		at  time.Time
		err error
	}
	drops := dev.opt.Part.DropsWhileBusy
	// A UART that loses bytes while the CPU is stalled is read at once, whatever the
	// device is doing (the hardware keeps receiving); otherwise the reader waits, and
	// bytes wait in the cable's buffers, as USB's flow control makes them.
	depth := 1
	if drops {
		depth = 4096
	}
	in := make(chan chunk, depth)
	done := make(chan struct{})
	defer close(done)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf)
			c := chunk{b: dev.receive(buf[:n]), at: time.Now(), err: err}
			select {
			case in <- c:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	raw := dev.opt.Profile != nil && dev.opt.Profile.RawUART
	var dec smp.FrameDecoder
	var rdec rawDecoder
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c = <-in:
		}
		if c.at.Before(dev.resetDeadline()) {
			c.b = nil // sent while the device was rebooting: nobody listened
		}
		// A packet larger than the buffer is dropped without an answer, as Zephyr's and
		// MCUboot's transports do; decode errors are not the client's to hear either.
		var msgs [][]byte
		if raw {
			rdec.max = dev.bufferSize()
			if dev.opt.Profile.RawInputTimeout > 0 && c.at.Sub(rdec.last) > dev.opt.Profile.RawInputTimeout {
				rdec.buf = nil // the input timer fired: the partial packet is dropped
			}
			rdec.last = c.at
			if m := rdec.Write(c.b); m != nil {
				msgs = append(msgs, m)
			}
		} else if len(c.b) > 0 {
			dec.MaxPacket = dev.bufferSize()
			msgs, _ = dec.Write(c.b)
		}
		for _, m := range msgs {
			resp, after := dev.Handle(m)
			if busy := dev.takeBusy(); busy > 0 {
				// The flash controller stalls the CPU: nothing is answered until it is
				// done.
				dev.setBusy(busy)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(busy):
				}
			}
			if resp != nil {
				out := resp
				if !raw {
					out = smp.EncodePacket(resp, dev.opt.FrameSize)
				}
				if _, err := rw.Write(out); err != nil {
					return err
				}
			}
			if after != nil {
				after()
			}
		}
		if c.err != nil {
			if errors.Is(c.err, io.EOF) {
				return nil
			}
			return c.err
		}
	}
}

// receive is the UART's receiver: while a flash operation stalls the CPU (and the part
// loses bytes then), only the receive FIFO's worth of bytes survives; while the device
// reboots, nothing does. Which bytes were on the wire when is worked out from the line
// rate: the bytes of one read arrived back to back, the last just now, so a read that
// comes in bursts is judged by when its bytes crossed the wire, not when it was read.
func (d *Device) receive(b []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	baud := d.opt.Baud
	if baud <= 0 {
		baud = 115200
	}
	perByte := time.Second * 10 / time.Duration(baud)
	out := make([]byte, 0, len(b))
	for i, c := range b {
		at := now.Add(-time.Duration(len(b)-1-i) * perByte)
		switch {
		case !at.Before(d.resetStart) && at.Before(d.resetUntil):
			d.stats.DroppedBytes++
			continue
		case d.opt.Part.DropsWhileBusy && !at.Before(d.busyStart) && at.Before(d.busyUntil):
			if d.rxKept >= d.opt.Part.RxFIFO {
				d.stats.DroppedBytes++
				continue
			}
			d.rxKept++
		}
		out = append(out, c)
	}
	return out
}

func (d *Device) setBusy(t time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busyStart = time.Now()
	d.busyUntil = d.busyStart.Add(t)
	d.rxKept = 0
}

func (d *Device) resetDeadline() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resetUntil
}

func (d *Device) bufferSize() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bufferSizeLocked()
}

// Handle answers one SMP message. after, when not nil, is to be run once the response is
// on the wire (a reset).
func (d *Device) Handle(msg []byte) (resp []byte, after func()) {
	h, body, err := smp.ParseMessage(msg)
	if err != nil || (h.Op != smp.OpRead && h.Op != smp.OpWrite) {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := reply{h: h, recovery: d.boot.Mode == flash.ModeRecovery}
	var out any
	if r.recovery {
		out, after = d.recovery(&r, body)
	} else {
		out, after = d.application(&r, body)
	}
	b, err := smp.Marshal(out)
	if err != nil {
		return nil, nil
	}
	rh := h
	rh.Op++ // read -> read response, write -> write response
	return smp.BuildMessage(rh, b), after
}

// reply builds the error forms for one request.
type reply struct {
	h        smp.Header
	recovery bool
}

func (r *reply) generic(rc int64) any { return map[string]int64{"rc": rc} }

// group answers a group-specific error: SMP v2's "err" form to a v2 request from an
// application, else the v1 "rc" with the generic code Zephyr translates it to.
func (r *reply) group(rc, generic int64) any {
	if r.h.Version == smp.Version2 && !r.recovery {
		return map[string]any{"err": smp.GroupError{Group: r.h.Group, RC: rc}}
	}
	return r.generic(generic)
}

func (d *Device) application(r *reply, body []byte) (any, func()) {
	h := r.h
	p := d.opt.Profile
	if p != nil && h.Group == smp.GroupImage && h.Op == smp.OpWrite {
		switch h.ID {
		case smp.ImageUpload:
			return d.zephyrUpload(r, body), nil
		case smp.ImageErase:
			return d.zephyrErase(r, body), nil
		case smp.ImageState:
			return d.zephyrStateWrite(r, body), nil
		}
	}
	switch {
	case h.Group == smp.GroupOS && h.ID == smp.OSEcho:
		return d.echo(r, body), nil
	case h.Group == smp.GroupOS && h.ID == smp.OSReset && h.Op == smp.OpWrite:
		return map[string]any{}, d.resetAfter()
	case h.Group == smp.GroupOS && h.ID == smp.OSParams && h.Op == smp.OpRead && (p == nil || p.Params):
		return smp.ParamsResponse{BufSize: uint32(d.bufferSizeLocked()), BufCount: uint32(d.opt.BufCount)}, nil
	case h.Group == smp.GroupOS && h.ID == smp.OSInfo && h.Op == smp.OpRead && (p == nil || p.Info):
		return d.info(r, body), nil
	case h.Group == smp.GroupOS && h.ID == smp.OSBootloaderInfo && h.Op == smp.OpRead && (p == nil || p.BootloaderInfo):
		var req smp.BootloaderInfoRequest
		if smp.Unmarshal(body, &req) != nil {
			return r.generic(smp.ErrInvalid), nil
		}
		switch req.Query {
		case "":
			return smp.BootloaderInfoResponse{Bootloader: "MCUboot"}, nil
		case "mode":
			mode := int64(1) // MCUBOOT_MODE_SWAP_USING_SCRATCH
			return smp.BootloaderInfoResponse{Mode: &mode}, nil
		}
		return r.group(3, smp.ErrNotSupported), nil // OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER
	case h.Group == smp.GroupImage && h.ID == smp.ImageState && h.Op == smp.OpRead:
		return d.state(), nil
	case h.Group == smp.GroupImage && h.ID == smp.ImageState && h.Op == smp.OpWrite:
		return d.stateWrite(r, body), nil
	case h.Group == smp.GroupImage && h.ID == smp.ImageUpload && h.Op == smp.OpWrite:
		return d.upload(r, body, flash.Secondary), nil
	case h.Group == smp.GroupImage && h.ID == smp.ImageErase && h.Op == smp.OpWrite:
		return d.erase(r, body), nil
	}
	return r.generic(smp.ErrNotSupported), nil
}

// recovery is MCUboot's boot_serial: echo, reset, image list and upload (into the primary
// slot, MCUboot's default without MCUBOOT_SERIAL_DIRECT_IMAGE_UPLOAD); "not supported"
// for the rest.
func (d *Device) recovery(r *reply, body []byte) (any, func()) {
	h := r.h
	p := d.opt.Profile
	if p != nil {
		switch {
		case h.Group == smp.GroupOS && h.ID == smp.OSEcho && !p.RecoveryEcho:
			return r.generic(smp.ErrNotSupported), nil
		case h.Group == smp.GroupOS && h.ID == smp.OSParams && h.Op == smp.OpRead:
			if !p.RecoveryParams {
				return r.generic(smp.ErrNotSupported), nil
			}
			return smp.ParamsResponse{BufSize: uint32(p.RecoveryBufSize), BufCount: 1}, nil
		case h.Group == smp.GroupImage && h.ID == smp.ImageUpload && h.Op == smp.OpWrite:
			return d.mcubootUpload(r, body), nil
		}
	}
	switch {
	case h.Group == smp.GroupOS && h.ID == smp.OSEcho:
		return d.echo(r, body), nil
	case h.Group == smp.GroupOS && h.ID == smp.OSReset && h.Op == smp.OpWrite:
		return map[string]int64{"rc": 0}, d.resetAfter()
	case h.Group == smp.GroupOS && h.ID == smp.OSParams && h.Op == smp.OpRead && d.opt.RecoveryParams:
		return smp.ParamsResponse{BufSize: uint32(d.opt.BufferSize), BufCount: 1}, nil
	case h.Group == smp.GroupImage && h.ID == smp.ImageState && h.Op == smp.OpRead:
		var images []smp.SlotState
		for slot := range 2 {
			if info := d.flash.Image(slot); info.Valid {
				images = append(images, smp.SlotState{Slot: uint32(slot), Version: info.VersionString(), Hash: info.Hash})
			}
		}
		return smp.ImageStateResponse{Images: images}, nil
	case h.Group == smp.GroupImage && h.ID == smp.ImageUpload && h.Op == smp.OpWrite:
		return d.upload(r, body, flash.Primary), nil
	}
	return r.generic(smp.ErrNotSupported), nil
}

func (d *Device) echo(r *reply, body []byte) any {
	var req smp.EchoRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	return smp.EchoResponse{R: req.D}
}

func (d *Device) resetAfter() func() {
	return func() {
		if d.opt.OnResetStart != nil {
			d.opt.OnResetStart()
		}
		d.mu.Lock()
		// The boot takes its time: MCUboot's swap (erase and program of every unit the
		// image covers, three times) and validation, then the application's start.
		wait := d.opt.Part.Boot
		if st := d.flash.SwapType(); st == flash.SwapTest || st == flash.SwapPerm || st == flash.SwapRevert {
			if !d.opt.Recovery {
				wait += d.opt.Part.SwapDuration(d.flash.Image(flash.Secondary).End)
			}
		}
		d.resetStart = time.Now()
		d.resetUntil = d.resetStart.Add(wait)
		d.mu.Unlock()
		time.Sleep(wait)
		d.mu.Lock()
		res, err := d.rebootLocked()
		d.stats.Resets++
		cb := d.opt.OnReset
		d.mu.Unlock()
		if err == nil && cb != nil {
			cb(res)
		}
	}
}

// info answers os info with uname-like letters, as Zephyr's os_mgmt_info does:
// s kernel name, n node name, r release, v version, b build time, m machine,
// p processor, i hardware platform, o operating system, a all.
func (d *Device) info(r *reply, body []byte) any {
	var req smp.InfoRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	format := req.Format
	if format == "" {
		format = "s"
	}
	if format == "a" {
		format = "snrvbmpio"
	}
	values := map[rune]string{
		's': "Zephyr", 'n': "fieldflash-sim", 'r': "4.1.0", 'v': "fieldflash-sim",
		'b': "Jan  1 2026 00:00:00", 'm': "sim", 'p': "sim", 'i': d.opt.HardwareID, 'o': "Zephyr",
	}
	var parts []string
	for _, c := range format {
		v, ok := values[c]
		if !ok {
			return r.group(2, smp.ErrInvalid) // OS_MGMT_ERR_INVALID_FORMAT
		}
		parts = append(parts, v)
	}
	return smp.InfoResponse{Output: strings.Join(parts, " ")}
}

// state is Zephyr's image state read: flags from the swap type the trailers ask for.
func (d *Device) state() smp.ImageStateResponse {
	st := d.flash.SwapType()
	var images []smp.SlotState
	for slot := range 2 {
		info := d.flash.Image(slot)
		if info.Hash == nil {
			continue
		}
		s := smp.SlotState{Slot: uint32(slot), Version: info.VersionString(), Hash: info.Hash, Bootable: true}
		active := slot == flash.Primary
		switch st {
		case flash.SwapNone:
			s.Confirmed = active
		case flash.SwapTest:
			s.Confirmed, s.Pending = active, !active
		case flash.SwapPerm:
			s.Confirmed, s.Pending, s.Permanent = active, !active, !active
		case flash.SwapRevert:
			s.Confirmed = !active
		}
		s.Active = active
		images = append(images, s)
	}
	return smp.ImageStateResponse{Images: images}
}

func (d *Device) stateWrite(r *reply, body []byte) any {
	var req smp.ImageStateWrite
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	primary, secondary := d.flash.Image(flash.Primary), d.flash.Image(flash.Secondary)
	var err error
	switch {
	case req.Confirm && (len(req.Hash) == 0 || bytes.Equal(req.Hash, primary.Hash)):
		err = d.flash.ConfirmPrimary()
	case len(req.Hash) == 0:
		return r.generic(smp.ErrInvalid)
	case !bytes.Equal(req.Hash, secondary.Hash):
		if bytes.Equal(req.Hash, primary.Hash) {
			return r.group(smp.ImgErrTestActiveDenied, smp.ErrBadState)
		}
		return r.group(smp.ImgErrHashNotFound, smp.ErrNoEntry)
	case !secondary.Valid:
		return r.group(smp.ImgErrInvalidHash, smp.ErrInvalid)
	case d.flash.SwapType() == flash.SwapRevert:
		// The secondary holds the image a revert needs; it cannot be replaced.
		return r.group(smp.ImgErrNoFreeSlot, smp.ErrBadState)
	default:
		err = d.flash.RequestSwap(req.Confirm)
	}
	if err != nil {
		return r.group(smp.ImgErrFlashWriteFailed, smp.ErrUnknown)
	}
	return d.state()
}

func (d *Device) erase(r *reply, body []byte) any {
	var req smp.EraseRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	if req.Slot != nil && *req.Slot != flash.Secondary {
		return r.group(smp.ImgErrInvalidSlot, smp.ErrInvalid)
	}
	if d.flash.SwapType() == flash.SwapRevert {
		return r.group(smp.ImgErrNoFreeSlot, smp.ErrBadState)
	}
	d.up = upload{}
	if err := d.flash.EraseSlot(flash.Secondary); err != nil {
		return r.group(13, smp.ErrUnknown) // IMG_MGMT_ERR_FLASH_ERASE_FAILED
	}
	return map[string]any{}
}

// upload is image upload with Zephyr's resume rule: a first chunk (off 0) naming the same
// sha and len as the upload in progress is answered with the offset reached, not restarted.
// MCUboot's serial recovery knows no sha and always restarts at off 0. A chunk at another
// offset than the expected one is answered with the expected offset and rc 0.
func (d *Device) upload(r *reply, body []byte, slot int) any {
	var req smp.UploadRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	d.stats.UploadChunks++
	d.stats.UploadBytes += int64(len(req.Data))
	if req.Image != nil && *req.Image != 0 {
		return r.group(smp.ImgErrInvalidSlot, smp.ErrInvalid)
	}
	size := uint64(d.flash.Layout().SlotSize)
	if req.Off == 0 {
		if req.Len == nil {
			return r.group(smp.ImgErrInvalidLength, smp.ErrInvalid)
		}
		if *req.Len > size {
			return r.group(smp.ImgErrTooLarge, smp.ErrInvalid)
		}
		if !r.recovery && d.up.active && d.up.slot == slot && d.up.off > 0 && d.up.len == *req.Len && len(req.SHA) > 0 && bytes.Equal(req.SHA, d.up.sha) {
			return uploadResponse(d.up.off, nil)
		}
		if slot == flash.Secondary && d.flash.SwapType() == flash.SwapRevert {
			return r.group(smp.ImgErrNoFreeSlot, smp.ErrBadState)
		}
		if req.Upgrade != nil && *req.Upgrade && len(req.Data) >= 32 {
			if notNewer, ok := d.notNewer(req.Data); ok && notNewer {
				return r.group(smp.ImgErrVersionIsNewer, smp.ErrBadState)
			}
		}
		d.up = upload{}
		if err := d.flash.EraseSlot(slot); err != nil {
			return r.group(13, smp.ErrUnknown)
		}
		d.up = upload{active: true, slot: slot, sha: bytes.Clone(req.SHA), len: *req.Len, hash: sha256.New()}
	}
	if !d.up.active || d.up.slot != slot {
		// No upload in progress (a reboot forgot it): like Zephyr, answer the offset
		// expected, 0, so the client starts over with the first-chunk form.
		return uploadResponse(0, nil)
	}
	if req.Off != d.up.off {
		return uploadResponse(d.up.off, nil)
	}
	if req.Off+uint64(len(req.Data)) > d.up.len {
		return r.group(smp.ImgErrDataOverrun, smp.ErrInvalid)
	}
	if err := d.flash.Program(slot, int64(req.Off), req.Data); err != nil {
		return r.group(smp.ImgErrFlashWriteFailed, smp.ErrUnknown)
	}
	d.up.hash.Write(req.Data)
	d.up.off += uint64(len(req.Data))
	if d.up.off == d.up.len && len(d.up.sha) > 0 && !r.recovery {
		match := bytes.Equal(d.up.hash.Sum(nil), d.up.sha)
		return uploadResponse(d.up.off, &match)
	}
	return uploadResponse(d.up.off, nil)
}

func uploadResponse(off uint64, match *bool) any {
	return smp.UploadResponse{Off: &off, Match: match}
}

// notNewer reports whether the image header at the start of data is not newer than the
// running image (Zephyr's "upgrade" flag check).
func (d *Device) notNewer(data []byte) (notNewer, ok bool) {
	if binary.LittleEndian.Uint32(data) != 0x96f3b83d {
		return false, false
	}
	cur := d.flash.Image(flash.Primary)
	if !cur.Valid {
		return false, true
	}
	v := [4]uint64{uint64(data[20]), uint64(data[21]), uint64(binary.LittleEndian.Uint16(data[22:])), uint64(binary.LittleEndian.Uint32(data[24:]))}
	c := [4]uint64{uint64(cur.Version.Major), uint64(cur.Version.Minor), uint64(cur.Version.Revision), uint64(cur.Version.Build)}
	for i := range v {
		if v[i] != c[i] {
			return v[i] < c[i], true
		}
	}
	return true, true
}

// MarkSecondaryForTest marks slot 1 for a trial boot, as an image state write would: for
// tests that need a pending slot whatever its hash.
func (d *Device) MarkSecondaryForTest() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flash.RequestSwap(false)
}

// FlashImage is what the bootloader reads of a slot now.
func (d *Device) FlashImage(slot int) flash.ImageInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flash.Image(slot)
}
