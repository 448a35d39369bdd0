package dfu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
)

// DfuSe commands, sent as DNLOAD block 0 (UM0424 section 10.4).
const (
	dfuseGetCommands = 0x00
	dfuseSetAddress  = 0x21
	dfuseErase       = 0x41
	dfuseFirstBlock  = 2 // data blocks are numbered from 2: address = pointer + (n-2)*wTransferSize
)

// Options tune a Driver; zero values take the defaults.
type Options struct {
	// RequestTimeout bounds one control transfer; 0 means 10 s: a DfuSe device holds the
	// next request while it erases a 128 KiB sector (up to 4 s on an STM32F4).
	RequestTimeout time.Duration
	// StallRetries is how often a request the device stalled (or answered with a
	// transient error) is cleared with CLRSTATUS and sent again; 0 means 4.
	StallRetries int
	// StallBackoff is the first pause after a stall, doubling each time; 0 means 20 ms.
	StallBackoff time.Duration
	// NoReadBack skips the upload read-back even where the device can upload: the device's
	// own check (manifestation status) is then what vouches for the image.
	NoReadBack bool
	// Reopen opens the device again after it re-enumerated. With it, a device found in
	// run-time mode is detached into DFU mode when the download starts; without it such a
	// device is refused.
	Reopen Reopen
}

// Stats count what the driver sent, for tests and benchmarks.
type Stats struct {
	Requests  int // control transfers
	Blocks    int // DNLOAD blocks with data
	Polls     int // GETSTATUS answers that said "busy, wait bwPollTimeout"
	Erased    int // DfuSe pages erased
	ClrStatus int
	Aborts    int
	Stalls    int // stalls and transient errors recovered
	ReadBack  int64
}

// Driver is flasher.Driver for USB DFU 1.1 and DfuSe devices, over one open DFU
// interface in DFU mode.
type Driver struct {
	conn Conn
	opt  Options
	alt  int // selected alternate setting; -1 before the first

	stats    Stats
	report   string      // how the written image was checked, in words
	detached bool        // the driver took the device from run-time into DFU mode
	found    StatusReply // what Identify's GETSTATUS answered
	leave    *uint32
}

var _ flasher.Driver = (*Driver)(nil)

// New returns a driver over conn. Close closes conn.
func New(conn Conn, opt Options) *Driver {
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 10 * time.Second
	}
	if opt.StallRetries <= 0 {
		opt.StallRetries = 4
	}
	if opt.StallBackoff <= 0 {
		opt.StallBackoff = 20 * time.Millisecond
	}
	return &Driver{conn: conn, opt: opt, alt: -1}
}

// Info is the device's description.
func (d *Driver) Info() *DeviceInfo { return d.conn.Info() }

// Detached says whether the driver detached the device from run-time into DFU mode.
func (d *Driver) Detached() bool { return d.detached }

// Stats returns what the driver sent so far.
func (d *Driver) Stats() Stats { return d.stats }

// Protocol is "dfu".
func (d *Driver) Protocol() string { return "dfu" }

func (d *Driver) canUpload() bool {
	return d.conn.Info().Functional.Attributes&AttrCanUpload != 0 && !d.opt.NoReadBack
}

// Capabilities: DfuSe devices that can upload resume at the first page that does not
// match; plain DFU cannot resume (no addressing). Check is an upload read-back where the
// device can upload and is still in DFU mode afterwards (DfuSe, or manifestation
// tolerant); otherwise the device's own check vouches for the image.
func (d *Driver) Capabilities() flasher.Capabilities {
	info := d.conn.Info()
	tolerant := info.Functional.Attributes&AttrManifestationTolerant != 0
	return flasher.Capabilities{
		Resume:   info.DfuSe() && d.canUpload(),
		Check:    d.canUpload() && (info.DfuSe() || tolerant),
		Reset:    true,
		Erase:    info.DfuSe(),
		Recovery: true,
		Departs:  true,
	}
}

// CheckReport says how the written image was checked: read back, or the device's own
// check. The engine shows it at the check step.
func (d *Driver) CheckReport() string {
	if d.report != "" {
		return d.report
	}
	if d.Capabilities().Check {
		return "not checked yet"
	}
	switch {
	case d.opt.NoReadBack:
		return "read-back turned off; relying on the device's own check (it reported status OK after the download and manifestation)"
	case d.conn.Info().Functional.Attributes&AttrCanUpload == 0:
		return "this device cannot upload, so the image was not read back; relying on the device's own check (it reported status OK after the download and manifestation)"
	}
	return "this device is not manifestation tolerant (it installs the image and waits for a reset), so the image cannot be read back; relying on the device's own check (it reported status OK after the download and manifestation)"
}

// Identify reads the device's state and describes it. A DFU device reports no hardware
// id and no version: the caller names the hardware (from the bundle's USB ids), and the
// engine learns that the image runs when the device leaves DFU mode.
func (d *Driver) Identify(ctx context.Context) (*flasher.Identity, error) {
	info := d.conn.Info()
	st, err := d.getStatus(ctx)
	switch {
	case err != nil && info.Runtime() && errors.Is(err, ErrStall):
		// GETSTATUS is optional in run-time mode.
		st = StatusReply{State: StateAppIdle}
	case err != nil:
		return nil, err
	}
	d.found = st
	return identity(info, st.State), nil
}

// Found is the error status the device reported when Identify asked it (a device left in
// dfuERROR by an earlier run or another tool), or nil. The download clears it with
// CLRSTATUS first.
func (d *Driver) Found() *DeviceError {
	if d.found.State == StateError || d.found.Status != StatusOK {
		return &DeviceError{Op: "found", Status: d.found.Status, State: d.found.State}
	}
	return nil
}

func describe(info *DeviceInfo) string {
	s := Printable(info.Product)
	if s == "" {
		s = info.ID()
	}
	s += " (" + VersionString(info.Functional.Version) + ", " + info.Mode() + ")"
	return s
}

func (d *Driver) selectAlt(ctx context.Context, alt int) error {
	if d.alt == alt {
		return nil
	}
	if err := d.conn.SetAlt(ctx, alt); err != nil {
		return wrapConn(fmt.Sprintf("selecting alternate setting %d", alt), err)
	}
	d.alt = alt
	return nil
}

// prepare selects the image's alternate setting and brings the device to dfuIDLE.
func (d *Driver) prepare(ctx context.Context, img *flasher.Image) (*plan, error) {
	if d.conn.Info().Runtime() {
		c, err := EnterDFUMode(ctx, d.conn, d.opt.Reopen)
		if err != nil {
			return nil, err
		}
		d.conn, d.alt, d.detached = c, -1, true
	}
	p, err := d.planImage(img)
	if err != nil {
		return nil, err
	}
	if err := d.selectAlt(ctx, img.Slot); err != nil {
		return nil, err
	}
	if _, err := d.toIdle(ctx); err != nil {
		return nil, err
	}
	if p.dfuse && len(p.elements) > 0 {
		a := p.elements[0].addr
		if img.Address != nil {
			a = uint32(*img.Address)
		}
		d.leave = &a
	}
	return p, nil
}

// ResumeOffset reads back (DfuSe upload) what the device holds of img and returns the
// image offset of the first page that differs: the download resumes there. Plain DFU has
// no addressing and cannot resume.
func (d *Driver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	if !d.Capabilities().Resume {
		return 0, flasher.ErrUnsupported
	}
	p, err := d.prepare(ctx, img)
	if err != nil {
		return 0, err
	}
	off, err := d.firstDifference(ctx, img, p, false)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return img.Size, nil
	}
	off = p.alignFrom(off)
	if off <= p.elements[0].off {
		return 0, nil // nothing of the image is there yet
	}
	return off, nil
}

// Write downloads img from byte from on: plain DFU in wTransferSize blocks followed by
// manifestation; DfuSe by erasing the pages the image covers, then each element at its
// address.
func (d *Driver) Write(ctx context.Context, img *flasher.Image, from int64, progress func(acked int64)) (int64, error) {
	p, err := d.prepare(ctx, img)
	if err != nil {
		return 0, err
	}
	d.report = ""
	if !p.dfuse {
		if from != 0 {
			return 0, fmt.Errorf("dfu: image %s: plain DFU has no addressing and cannot resume at byte %d; the download starts again from byte 0", img.Name, from)
		}
		return d.writePlain(ctx, img, p, progress)
	}
	return d.writeDfuSe(ctx, img, p, p.alignFrom(from), progress)
}

func (d *Driver) xfer() int {
	n := d.conn.Info().Functional.TransferSize
	if n <= 0 {
		n = 64
	}
	return n
}

func (d *Driver) writePlain(ctx context.Context, img *flasher.Image, p *plan, progress func(int64)) (int64, error) {
	e := p.elements[0]
	buf := make([]byte, d.xfer())
	var off int64
	block := 0
	for off < e.size {
		n := int(min(int64(len(buf)), e.size-off))
		if err := readFull(img.Data, buf[:n], e.off+off); err != nil {
			return off, fmt.Errorf("dfu: reading image %s at byte %d: %w", img.Name, off, err)
		}
		if err := d.dnloadBlock(ctx, uint16(block), buf[:n], fmt.Sprintf("writing block %d (bytes %d to %d)", block, off, off+int64(n))); err != nil {
			if isStall(err) {
				// A stalled block leaves a plain DFU device in dfuERROR; CLRSTATUS takes
				// it to dfuIDLE, where the download can only start again from byte 0.
				d.stats.Stalls++
				if _, cerr := d.toIdle(ctx); cerr == nil {
					return off, transient("dfu: image %s: the device stalled block %d (%v); it was cleared with CLRSTATUS and the download starts again from byte 0 (plain DFU cannot resume)", img.Name, block, err)
				}
			}
			return off, err
		}
		d.stats.Blocks++
		off += int64(n)
		block++
		if progress != nil && off < img.Size {
			progress(off)
		}
	}
	if err := d.manifest(ctx, uint16(block), img); err != nil {
		return off, err
	}
	if progress != nil {
		progress(img.Size)
	}
	return img.Size, nil
}

// dnloadBlock sends one DNLOAD and polls until the device took it.
func (d *Driver) dnloadBlock(ctx context.Context, block uint16, data []byte, op string) error {
	if err := d.out(ctx, ReqDnload, block, data, op); err != nil {
		return err
	}
	st, err := d.poll(ctx, op)
	if err != nil {
		return err
	}
	if st.State != StateDnloadIdle {
		return &DeviceError{Op: op + ": expected dfuDNLOAD-IDLE", Status: StatusErrUnknown, State: st.State}
	}
	return nil
}

// manifest sends the zero-length DNLOAD that ends the download and follows manifestation:
// a tolerant device returns to dfuIDLE; another waits for a reset (or resets itself and
// leaves the bus, which is success too).
func (d *Driver) manifest(ctx context.Context, block uint16, img *flasher.Image) error {
	info := d.conn.Info()
	tolerant := info.Functional.Attributes&AttrManifestationTolerant != 0
	if err := d.out(ctx, ReqDnload, block, nil, "ending the download (zero-length DNLOAD)"); err != nil {
		return err
	}
	st, err := d.poll(ctx, "manifestation")
	if err != nil {
		if !tolerant && errors.Is(err, ErrGone) {
			d.report = "the device installed the image and reset itself; relying on its own check"
			return nil
		}
		return err
	}
	switch st.State {
	case StateIdle:
	case StateManifestWaitReset:
	default:
		return &DeviceError{Op: "manifestation: expected dfuIDLE or dfuMANIFEST-WAIT-RESET", Status: StatusErrNotDone, State: st.State}
	}
	if !d.Capabilities().Check {
		d.report = d.CheckReport()
	}
	return nil
}

// setAddress sends the DfuSe set-address command.
func (d *Driver) dfuseCommand(ctx context.Context, cmd byte, addr uint32, op string) error {
	b := []byte{cmd, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], addr)
	return d.dnloadBlock(ctx, 0, b, op)
}

// retryStall runs f again after clearing a stall (CLRSTATUS) with backoff; the DfuSe
// address pointer is set again by f itself.
func (d *Driver) retryStall(ctx context.Context, f func() error) error {
	wait := d.opt.StallBackoff
	for i := 0; ; i++ {
		err := f()
		if err == nil || !isStall(err) || i >= d.opt.StallRetries {
			return err
		}
		d.stats.Stalls++
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait *= 2
		if _, cerr := d.toIdle(ctx); cerr != nil {
			return cerr
		}
	}
}

func (d *Driver) writeDfuSe(ctx context.Context, img *flasher.Image, p *plan, from int64, progress func(int64)) (int64, error) {
	// Erase only the pages the image touches from the resume point on.
	for _, pg := range p.pages(from) {
		if pg.sector.Type&Erasable == 0 {
			continue // written without an erase (option bytes, OTP)
		}
		op := fmt.Sprintf("erasing the %s page at 0x%08x", sizeString(pg.sector.Size), pg.sector.Start)
		if err := d.retryStall(ctx, func() error { return d.dfuseCommand(ctx, dfuseErase, pg.sector.Start, op) }); err != nil {
			return from, err
		}
		d.stats.Erased++
	}
	xfer := int64(d.xfer())
	buf := make([]byte, xfer)
	acked := from
	for _, e := range p.elements {
		if e.off+e.size <= from || e.size == 0 {
			continue
		}
		pos := max(from, e.off) // image offset
		for pos < e.off+e.size {
			addr := e.addr + uint32(pos-e.off)
			// One set-address, then blocks 2, 3, ... up to the 16-bit block number.
			err := d.retryStall(ctx, func() error {
				return d.dfuseCommand(ctx, dfuseSetAddress, addr, fmt.Sprintf("setting the address to 0x%08x", addr))
			})
			if err != nil {
				return acked, err
			}
			for block := dfuseFirstBlock; block <= 0xffff && pos < e.off+e.size; block++ {
				n := min(xfer, e.off+e.size-pos)
				if err := readFull(img.Data, buf[:n], pos); err != nil {
					return acked, fmt.Errorf("dfu: reading image %s at byte %d: %w", img.Name, pos, err)
				}
				a := e.addr + uint32(pos-e.off)
				op := fmt.Sprintf("writing %d bytes at 0x%08x", n, a)
				err := d.dnloadBlock(ctx, uint16(block), buf[:n], op)
				if err != nil && isStall(err) {
					// Clear the stall and write this block again at its own address.
					err = d.retryStall(ctx, func() error {
						if err := d.dfuseCommand(ctx, dfuseSetAddress, a, fmt.Sprintf("setting the address to 0x%08x", a)); err != nil {
							return err
						}
						return d.dnloadBlock(ctx, dfuseFirstBlock, buf[:n], op)
					})
					if err == nil {
						d.stats.Blocks++
						pos += n
						acked = pos
						if progress != nil && acked < img.Size {
							progress(acked)
						}
						break // the pointer moved: set the address again for the rest
					}
				}
				if err != nil {
					return acked, err
				}
				d.stats.Blocks++
				pos += n
				acked = pos
				if progress != nil && acked < img.Size {
					progress(acked)
				}
			}
		}
	}
	// Back to dfuIDLE, where an upload (the read-back check) may start.
	if _, err := d.toIdle(ctx); err != nil {
		return acked, err
	}
	if progress != nil {
		progress(img.Size)
	}
	return img.Size, nil
}

// Check reads the image back (upload) and compares it byte for byte.
func (d *Driver) Check(ctx context.Context, img *flasher.Image) error {
	if !d.Capabilities().Check {
		return flasher.ErrUnsupported
	}
	p, err := d.prepare(ctx, img)
	if err != nil {
		return err
	}
	var off int64
	if p.dfuse {
		off, err = d.firstDifference(ctx, img, p, true)
	} else {
		off, err = d.uploadCompare(ctx, img, p)
	}
	if err != nil {
		return err
	}
	if off >= 0 {
		d.report = fmt.Sprintf("read back: the device's copy differs from the image at byte %d", off)
		return fmt.Errorf("dfu: image %s: the device's copy differs from the image at byte %d of the download; the engine sends it again", img.Name, off)
	}
	n := int64(0)
	for _, e := range p.elements {
		n += e.size
	}
	d.report = fmt.Sprintf("read back all %d bytes from the device (upload): identical to the image", n)
	return nil
}

// uploadCompare reads a plain DFU device's alternate setting from its start (UPLOAD
// blocks 0, 1, ...) and compares it with the image; it returns the first offset that
// differs, or -1.
func (d *Driver) uploadCompare(ctx context.Context, img *flasher.Image, p *plan) (int64, error) {
	e := p.elements[0]
	xfer := d.xfer()
	got := make([]byte, xfer)
	want := make([]byte, xfer)
	var off int64
	short := false
	for block := 0; off < e.size; block++ {
		n, err := d.in(ctx, ReqUpload, uint16(block), got, fmt.Sprintf("reading back block %d", block))
		if err != nil {
			return 0, err
		}
		d.stats.ReadBack += int64(n)
		k := int(min(int64(n), e.size-off))
		if err := readFull(img.Data, want[:k], e.off+off); err != nil {
			return 0, err
		}
		if i := firstDiff(got[:k], want[:k]); i >= 0 {
			d.toIdle(ctx)
			return off + int64(i), nil
		}
		off += int64(k)
		if n < xfer {
			short = true
			break
		}
	}
	if off < e.size {
		return off, nil // the device ended the upload before the image's end
	}
	if !short {
		if _, err := d.toIdle(ctx); err != nil { // ABORT the rest of the upload
			return 0, err
		}
	}
	return -1, nil
}

// firstDifference reads back a DfuSe device's memory under each element and returns the
// image offset of the first byte that differs, or -1 when all match. stopAtFirst is
// always true in effect: the first difference ends the read.
func (d *Driver) firstDifference(ctx context.Context, img *flasher.Image, p *plan, _ bool) (int64, error) {
	xfer := int64(d.xfer())
	got := make([]byte, xfer)
	want := make([]byte, xfer)
	for _, e := range p.elements {
		for pos := e.off; pos < e.off+e.size; {
			addr := e.addr + uint32(pos-e.off)
			if err := d.dfuseCommand(ctx, dfuseSetAddress, addr, fmt.Sprintf("setting the address to 0x%08x for read-back", addr)); err != nil {
				return 0, err
			}
			if _, err := d.toIdle(ctx); err != nil { // ABORT: upload starts from dfuIDLE
				return 0, err
			}
			for block := dfuseFirstBlock; block <= 0xffff && pos < e.off+e.size; block++ {
				n := min(xfer, e.off+e.size-pos)
				k, err := d.in(ctx, ReqUpload, uint16(block), got[:n], fmt.Sprintf("reading back %d bytes at 0x%08x", n, e.addr+uint32(pos-e.off)))
				if err != nil {
					return 0, err
				}
				d.stats.ReadBack += int64(k)
				if err := readFull(img.Data, want[:n], pos); err != nil {
					return 0, err
				}
				if i := firstDiff(got[:k], want[:k]); i >= 0 {
					d.toIdle(ctx)
					return pos + int64(i), nil
				}
				if int64(k) < n {
					d.toIdle(ctx)
					return pos + int64(k), nil
				}
				pos += n
			}
			if _, err := d.toIdle(ctx); err != nil {
				return 0, err
			}
		}
	}
	return -1, nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// Activate does nothing: a DFU device installs the image itself (manifestation, or the
// DfuSe leave in Reset).
func (d *Driver) Activate(ctx context.Context, img *flasher.Image) error { return nil }

// Confirm is not offered: DFU has no trial boot.
func (d *Driver) Confirm(ctx context.Context, img *flasher.Image) error {
	return flasher.ErrUnsupported
}

// Revert is not offered.
func (d *Driver) Revert(ctx context.Context) error { return flasher.ErrUnsupported }

// Reset starts the new image: DfuSe "leave" (set the address to the image's start and a
// zero-length download, after which the device jumps there), or a USB port reset for plain
// DFU. The device leaving the bus is what success looks like.
func (d *Driver) Reset(ctx context.Context) error {
	info := d.conn.Info()
	if info.DfuSe() && !info.Runtime() {
		addr := uint32(0)
		switch {
		case d.leave != nil:
			addr = *d.leave
		default:
			for _, a := range info.Alts {
				if a.Layout != nil && len(a.Layout.Sectors) > 0 {
					addr = a.Layout.Sectors[0].Start
					break
				}
			}
		}
		if _, err := d.toIdle(ctx); err != nil {
			return err
		}
		if err := d.dfuseCommand(ctx, dfuseSetAddress, addr, fmt.Sprintf("setting the leave address 0x%08x", addr)); err != nil {
			return err
		}
		if err := d.out(ctx, ReqDnload, dfuseFirstBlock, nil, "leaving DFU mode (zero-length DNLOAD)"); err != nil {
			return err
		}
		// The GETSTATUS that follows starts the jump; the device may not answer it.
		if _, err := d.getStatus(ctx); err != nil && !errors.Is(err, ErrGone) && !errors.Is(err, ErrStall) {
			return err
		}
		return &linkError{fmt.Errorf("dfu: %s left DFU mode for the application at 0x%08x: %w", info, addr, ErrGone)}
	}
	if err := d.conn.Reset(ctx); err != nil && !errors.Is(err, ErrGone) {
		return wrapConn("USB reset", err)
	}
	return &linkError{fmt.Errorf("dfu: %s was reset to start the new image: %w", info, ErrGone)}
}

// Close closes the interface.
func (d *Driver) Close() error { return d.conn.Close() }
