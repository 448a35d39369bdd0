package ymodem

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
)

// The line conventions of docs/protocols.md § YMODEM. YMODEM itself has no commands; a
// bootloader that follows these lets the flasher identify it, check the image it stored
// and reset it. One that does not still takes the transfer.
const (
	// BannerMarker is what a banner line holds before its key=value fields, e.g.
	// "fieldflash-sim ymodem bootloader hw=acme-x1 ver=1.0.0 counter=3 app=2.1.0".
	BannerMarker = "ymodem bootloader"
	// VerdictPrefix starts the line a bootloader prints after a batch:
	// "verdict ok size=<n> sha256=<hex>" or "verdict fail reason=<text>".
	VerdictPrefix = "verdict "
	// ResetCommand asks for a reboot; the bootloader answers ResetAnswer first.
	ResetCommand = "reset"
	ResetAnswer  = "ok reset"
)

// Options tune the driver; zero values take the defaults.
type Options struct {
	Send            SendOptions   // Progress is set by Write
	IdentifyTimeout time.Duration // wait for a banner after a newline (default 2 s)
	VerdictTimeout  time.Duration // wait for the verdict line after a batch (default 10 s)
	ResetTimeout    time.Duration // wait for "ok reset" (default 2 s)
}

// Driver is flasher.Driver for classic bootloaders that take an image by YMODEM.
type Driver struct {
	link *Link
	opt  Options
	// banner is true once the bootloader identified itself by the banner convention; only
	// then does it print verdicts and take commands.
	banner bool
}

var _ flasher.Driver = (*Driver)(nil)

// New returns a driver over rw, an open serial port. From its first use the driver reads
// rw until rw fails (see Link); Close leaves rw open: its owner closes it.
func New(rw io.ReadWriter, opt Options) *Driver {
	if opt.IdentifyTimeout <= 0 {
		opt.IdentifyTimeout = 2 * time.Second
	}
	if opt.VerdictTimeout <= 0 {
		opt.VerdictTimeout = 10 * time.Second
	}
	if opt.ResetTimeout <= 0 {
		opt.ResetTimeout = 2 * time.Second
	}
	return &Driver{link: NewLink(rw), opt: opt}
}

// Protocol is "ymodem".
func (d *Driver) Protocol() string { return "ymodem" }

// Capabilities: YMODEM cannot resume, test or confirm. Check and Reset are offered once
// Identify found a bootloader that follows the banner convention.
func (d *Driver) Capabilities() flasher.Capabilities {
	return flasher.Capabilities{Check: d.banner, Reset: d.banner, Recovery: true}
}

// Identify sends a newline and reads the banner. A bootloader that prints none still gets
// an Identity, with only Protocol (and Mode when it asks for a file with 'C').
func (d *Driver) Identify(ctx context.Context) (*flasher.Identity, error) {
	id := newIdentity()
	d.link.Discard()
	if _, err := d.link.Write([]byte("\r\n")); err != nil {
		return nil, fmt.Errorf("ymodem: identifying the bootloader: %w; check the cable and that the device is in its bootloader", err)
	}
	deadline := time.Now().Add(d.opt.IdentifyTimeout)
	// The newline goes again every quarter of the wait: a line fault may have dropped it,
	// or the bootloader was still busy with the end of an earlier transfer.
	every := d.opt.IdentifyTimeout / 4
	resend := time.Now().Add(every)
	asked := false
	defer func() {
		// The 'C' we read is the bootloader's request for a file, which it may not repeat
		// for seconds (rb waits 10): keep it for Write.
		if asked {
			d.link.Unread([]byte{CRC})
		}
	}()
	for {
		until := resend
		if deadline.Before(until) {
			until = deadline
		}
		line, err := d.link.ReadLine(ctx, until, 512)
		onlyC := line != "" && strings.Trim(line, "C") == ""
		if onlyC {
			id.Mode = flasher.ModeBootloader // something asks for a file: a bootloader
			asked = true
		}
		if errors.Is(err, ErrTimeout) && time.Now().Before(deadline) {
			if line != "" && !onlyC {
				d.link.Unread([]byte(line)) // a banner on its way: keep its start
			}
			if _, err := d.link.Write([]byte("\r\n")); err != nil {
				return nil, fmt.Errorf("ymodem: identifying the bootloader: %w; check the cable and that the device is in its bootloader", err)
			}
			resend = time.Now().Add(every)
			continue
		}
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				return id, nil
			}
			return nil, fmt.Errorf("ymodem: identifying the bootloader: %w", err)
		}
		if i := strings.Index(line, BannerMarker); i >= 0 {
			parseBanner(id, line, i)
			d.banner = true
			return id, nil
		}
	}
}

func newIdentity() *flasher.Identity { return &flasher.Identity{Protocol: "ymodem"} }

// parseBanner fills id from "<name> ymodem bootloader key=value ...".
func parseBanner(id *flasher.Identity, line string, marker int) {
	id.Mode = flasher.ModeBootloader
	id.BufferSize = 1024
	name := strings.Fields(strings.TrimLeft(line[:marker], "C"))
	bootloader := strings.Join(name, " ")
	slot := flasher.Slot{Bootable: true, Active: true, Confirmed: true, Permanent: true}
	hasApp := false
	for _, f := range strings.Fields(line[marker+len(BannerMarker):]) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "hw":
			id.HardwareID = v
		case "ver":
			bootloader = strings.TrimSpace(bootloader + " " + v)
		case "counter":
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				id.ReleaseCounter = &n
			}
		case "app":
			slot.Version, hasApp = v, true
			id.Components = map[string]string{"app": v}
		case "app_sha256":
			if h, err := hex.DecodeString(v); err == nil {
				slot.Hash, hasApp = h, true
			}
		case "max":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				slot.Size = n
			}
		}
	}
	id.Bootloader = bootloader
	if hasApp || slot.Size > 0 {
		slot.Bootable = hasApp
		id.Slots = []flasher.Slot{slot}
	}
}

// ResumeOffset: YMODEM cannot resume; a rerun sends the whole image again.
func (d *Driver) ResumeOffset(ctx context.Context, img *flasher.Image) (int64, error) {
	return 0, flasher.ErrUnsupported
}

// Write sends img as a YMODEM batch of one file named after the target's base name.
func (d *Driver) Write(ctx context.Context, img *flasher.Image, from int64, progress func(acked int64)) (int64, error) {
	if from != 0 {
		return 0, fmt.Errorf("ymodem: image %s: cannot resume at byte %d, YMODEM always sends the whole image; write it again from byte 0", img.Name, from)
	}
	name := path.Base(img.Name)
	if name == "." || name == "/" || name == "" {
		name = "image.bin"
	}
	opt := d.opt.Send
	opt.Progress = progress
	acked, err := Send(ctx, d.link, []File{{Name: name, Size: img.Size, Data: img.Data}}, opt)
	if err == nil {
		return acked, nil
	}
	if !errors.Is(err, ErrCancelled) || ctx.Err() != nil {
		return acked, fmt.Errorf("ymodem: image %s: %w; check the cable and that the device is in its bootloader, then flash again", img.Name, err)
	}
	// The bootloader cancelled. Whether that was the line or a refusal of the image, its
	// verdict says (cause=line or cause=image); without one, where the cancel came does.
	line := errors.Is(err, ErrCancelledInData)
	said := ""
	if v, ok := d.cancelVerdict(ctx); ok {
		said = "; the bootloader says: " + v.reason
		switch v.cause {
		case causeLine:
			line = true
		case "":
		default:
			line = false
		}
	}
	if line {
		return acked, &lineError{fmt.Errorf("ymodem: image %s: %w%s; the bootloader gave up on the line, flash again (the engine retries by itself)", img.Name, err, said)}
	}
	return acked, fmt.Errorf("ymodem: image %s: %w%s; the bootloader refused the image (too large, wrong device or older than the one it holds?); see its verdict on the console", img.Name, err, said)
}

// lineError is a transfer the bootloader cancelled because of the line: worth a retry
// (flasher.IsTransient).
type lineError struct{ error }

func (e *lineError) Transient() bool { return true }
func (e *lineError) Unwrap() error   { return e.error }

// cancelVerdict reads the verdict a bootloader that follows the line conventions prints
// right after it cancels.
func (d *Driver) cancelVerdict(ctx context.Context) (verdict, bool) {
	if !d.banner {
		return verdict{}, false
	}
	deadline := time.Now().Add(d.opt.VerdictTimeout)
	for {
		line, err := d.link.ReadLine(ctx, deadline, 512)
		if err != nil {
			return verdict{}, false
		}
		if i := strings.Index(line, VerdictPrefix); i >= 0 {
			// Put it back for Check, which a caller may ask for the reason; the next
			// transfer skips it while it waits for the bootloader's 'C'.
			d.link.Unread([]byte("\r\n" + line + "\r\n"))
			v := parseVerdict(line[i+len(VerdictPrefix):])
			return v, !v.ok
		}
	}
}

// Check reads the verdict line the bootloader prints after the batch and compares its size
// and SHA-256 with img.
func (d *Driver) Check(ctx context.Context, img *flasher.Image) error {
	if !d.banner {
		return flasher.ErrUnsupported
	}
	deadline := time.Now().Add(d.opt.VerdictTimeout)
	for {
		line, err := d.link.ReadLine(ctx, deadline, 512)
		if err != nil {
			return fmt.Errorf("ymodem: image %s: no verdict from the bootloader: %w; flash again", img.Name, err)
		}
		i := strings.Index(line, VerdictPrefix)
		if i < 0 {
			continue
		}
		v := parseVerdict(line[i+len(VerdictPrefix):])
		switch {
		case !v.ok:
			return fmt.Errorf("ymodem: image %s: the bootloader refused it: %s; the previous application stays", img.Name, v.reason)
		case v.size != img.Size:
			return fmt.Errorf("ymodem: image %s: the bootloader stored %d bytes, not %d; flash again", img.Name, v.size, img.Size)
		case v.sha256 != img.SHA256:
			return fmt.Errorf("ymodem: image %s: the bootloader stored an image with SHA-256 %x, not %x; flash again", img.Name, v.sha256, img.SHA256)
		}
		return nil
	}
}

type verdict struct {
	ok     bool
	cause  string // of a failure: causeLine, causeImage or "" (not said)
	reason string
	size   int64
	sha256 [32]byte
}

// Causes a failed verdict may give (docs/protocols.md § YMODEM).
const (
	causeLine  = "line"  // the bootloader gave up on the line: flash again
	causeImage = "image" // it refuses the image: flashing it again changes nothing
)

func parseVerdict(s string) verdict {
	var v verdict
	word, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	if word != "ok" {
		before, reason, _ := strings.Cut(rest, "reason=")
		for _, f := range strings.Fields(before) {
			if c, ok := strings.CutPrefix(f, "cause="); ok {
				v.cause = c
			}
		}
		v.reason = strings.TrimSpace(reason)
		if v.reason == "" {
			v.reason = "no reason given"
		}
		return v
	}
	v.ok, v.reason = true, ""
	v.size = -1
	for _, f := range strings.Fields(rest) {
		k, val, _ := strings.Cut(f, "=")
		switch k {
		case "size":
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				v.size = n
			}
		case "sha256":
			if h, err := hex.DecodeString(val); err == nil && len(h) == 32 {
				copy(v.sha256[:], h)
			}
		}
	}
	return v
}

// Activate does nothing: a classic bootloader makes the image the application as soon as
// it holds it whole.
func (d *Driver) Activate(ctx context.Context, img *flasher.Image) error { return nil }

// Confirm is not offered: there is no trial boot.
func (d *Driver) Confirm(ctx context.Context, img *flasher.Image) error {
	return flasher.ErrUnsupported
}

// Revert is not offered: a classic bootloader keeps one application.
func (d *Driver) Revert(ctx context.Context) error { return flasher.ErrUnsupported }

// Reset sends the reset command and waits for the bootloader's answer.
func (d *Driver) Reset(ctx context.Context) error {
	if !d.banner {
		return flasher.ErrUnsupported
	}
	if _, err := d.link.Write([]byte(ResetCommand + "\r\n")); err != nil {
		return fmt.Errorf("ymodem: reset: %w; power-cycle the device", err)
	}
	deadline := time.Now().Add(d.opt.ResetTimeout)
	for {
		line, err := d.link.ReadLine(ctx, deadline, 512)
		if err != nil {
			return fmt.Errorf("ymodem: reset: no answer: %w; power-cycle the device", err)
		}
		if strings.Contains(line, ResetAnswer) {
			return nil
		}
	}
}

// Close leaves the port open: its owner closes it, which also ends the Link's reader.
func (d *Driver) Close() error { return nil }
