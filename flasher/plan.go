package flasher

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// PlanOptions say how to run an update. Zero values take the defaults of the protocol.
type PlanOptions struct {
	// Protocol is the driver's protocol: "smp", "ymodem", "dfu". Empty takes
	// Identity.Protocol.
	Protocol string
	// HardwareID names the hardware when the device cannot say (classic bootloaders);
	// when the device does say, the two must agree.
	HardwareID string
	// Component picks among several targets for the same hardware when no target is named.
	Component string
	// Device is a stable id of the device for the journal (hardware id and serial number).
	// Empty takes the hardware id.
	Device string
	// Port names the link in hints ("/dev/ttyACM0", "COM4", "usb 1-2").
	Port string
	// Reconnect opens the link and the driver anew: a reset drops USB CDC links and
	// re-enumerates USB devices. Nil keeps using the driver given to Run.
	Reconnect func(ctx context.Context) (Driver, error)
	// Health is an extra check of the new image once the device reports it running, e.g.
	// an application-level self-test. An error fails the probe, which reverts.
	Health func(ctx context.Context, id *Identity) error
	// ProbeTimeout bounds the wait for the device to come back after reset.
	ProbeTimeout time.Duration
	// StallTimeout aborts (and retries) a transfer that made no progress this long.
	StallTimeout time.Duration
	// RequestTimeout bounds every other request to the device.
	RequestTimeout time.Duration
	// DepartWait is how long a probe waits for a device whose driver Departs (USB DFU) to
	// come back after the reset before it takes the device's absence as the new image
	// running; 10 s when 0.
	DepartWait time.Duration
	// Retry governs retries after link faults.
	Retry RetryPolicy
	// Now is the clock for events and the journal; nil means time.Now.
	Now func() time.Time
}

// RetryPolicy is exponential backoff with jitter between attempts after a link fault.
type RetryPolicy struct {
	Initial time.Duration // first pause; 500 ms when 0
	Max     time.Duration // longest pause; 10 s when 0
	Tries   uint          // attempts per step before giving up; 8 when 0
}

// protocolDefaults are the timeouts that suit each protocol's own retry behaviour.
var protocolDefaults = map[string]struct{ stall, request, probe time.Duration }{
	// SMP requests answer in milliseconds; an erase of a large slot on the first chunk
	// can take seconds.
	"smp": {stall: 10 * time.Second, request: 5 * time.Second, probe: 60 * time.Second},
	// YMODEM receivers retransmit up to ten times at one-second intervals.
	"ymodem": {stall: 15 * time.Second, request: 10 * time.Second, probe: 60 * time.Second},
	// DFU manifestation and re-enumeration can take long on big parts.
	"dfu": {stall: 10 * time.Second, request: 5 * time.Second, probe: 90 * time.Second},
}

func (o *PlanOptions) fill(protocol string) {
	d, ok := protocolDefaults[protocol]
	if !ok {
		d = protocolDefaults["ymodem"]
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = d.stall
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = d.request
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = d.probe
	}
	if o.DepartWait <= 0 {
		o.DepartWait = 10 * time.Second
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = 500 * time.Millisecond
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 10 * time.Second
	}
	if o.Retry.Tries == 0 {
		o.Retry.Tries = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Plan is an update that passed preflight: which target goes to which slot of which
// device, and how.
type Plan struct {
	Bundle       string // bundle file
	BundleDigest string // verify.Verified.Digest
	Target       verify.Target
	Image        Image // Data serves a private copy of the payload, checked before anything is sent
	Protocol     string
	Device       string // journal key
	HardwareID   string
	From         *Identity // the device as it was when planned
	Options      PlanOptions
	// Notes are what the technician should read before flashing: release notes,
	// advisories, verification warnings.
	Notes []string

	source     *verifiedCopy
	deviceHash []byte // MCUboot image hash, which the device reports for its slots
}

// Close releases the private copy of the image.
func (p *Plan) Close() error {
	if p.source == nil {
		return nil
	}
	return p.source.Close()
}

// JournalKey is the key of this update's journal.
func (p *Plan) JournalKey() JournalKey {
	return JournalKey{Device: p.Device, ImageSHA256: hex.EncodeToString(p.Image.SHA256[:])}
}

// NewPlan picks the target for the device and runs preflight: hardware, anti-rollback,
// requirements on other components, slot size, protocol. target is a TUF target path, or
// "" for the first target that fits the device. A refusal is an *Error naming the thing,
// the reason and the next step.
func NewPlan(v *verify.Verified, target string, id *Identity, opt PlanOptions) (*Plan, error) {
	if v == nil || id == nil {
		return nil, &Error{Code: CodeNoTarget, Thing: "plan", Reason: "needs a verified bundle and the device's identity", Next: "verify the bundle and connect the device first"}
	}
	protocol := opt.Protocol
	if protocol == "" {
		protocol = id.Protocol
	}
	opt.Protocol = protocol
	opt.fill(protocol)

	hw := id.HardwareID
	switch {
	case hw == "" && opt.HardwareID == "":
		next := "read the hardware id off the device's label and pass it with --hardware"
		if ids := hardwareFor(v, protocol); len(ids) > 0 {
			next += "; this bundle has firmware for " + strings.Join(ids, ", ")
		}
		return nil, &Error{Code: CodeHardware, Thing: "device" + portSuffix(opt.Port),
			Reason: "does not report its hardware id (stock Zephyr answers no os info, and MCUboot serial recovery none)",
			Next:   next}
	case hw == "":
		hw = opt.HardwareID
	case opt.HardwareID != "" && opt.HardwareID != hw:
		return nil, &Error{Code: CodeWrongDevice, Thing: "device" + portSuffix(opt.Port),
			Reason: fmt.Sprintf("reports hardware %q, not %q as given", hw, opt.HardwareID),
			Next:   "check that the right device is connected"}
	}

	t, err := pickTarget(v, target, hw, opt.Component, protocol)
	if err != nil {
		return nil, err
	}
	thing := "target " + t.Path
	meta := t.Meta

	if len(meta.Protocol.Protocols) > 0 && !slices.Contains(meta.Protocol.Protocols, protocol) {
		return nil, &Error{Code: CodeProtocol, Thing: thing,
			Reason: fmt.Sprintf("may be flashed with %s, but the device speaks %s", strings.Join(meta.Protocol.Protocols, ", "), protocol),
			Next:   fmt.Sprintf("put the device into its %s mode (see its manual) and connect again", meta.Protocol.Protocols[0])}
	}

	if id.ReleaseCounter != nil && meta.ReleaseCounter < *id.ReleaseCounter {
		return nil, &Error{Code: CodeReleaseCounter, Thing: thing,
			Reason: fmt.Sprintf("release counter %d is below the device's %d (anti-rollback: the device would refuse or be downgraded to a release with known flaws)", meta.ReleaseCounter, *id.ReleaseCounter),
			Next:   "use a newer bundle for this device"}
	}

	for _, r := range meta.Requires {
		have, ok := id.Components[r.Component]
		if !ok {
			return nil, &Error{Code: CodeRequirement, Thing: thing,
				Reason: fmt.Sprintf("requires %s %s, but the device does not report a %s version", r.Component, r.Version, r.Component),
				Next:   fmt.Sprintf("update %s first with a bundle that carries it, or ask support", r.Component)}
		}
		ok, err := satisfies(have, r.Version)
		if err != nil {
			return nil, &Error{Code: CodeRequirement, Thing: thing, Reason: fmt.Sprintf("requirement on %s: %v", r.Component, err), Next: "ask the release team for a corrected bundle", Err: err}
		}
		if !ok {
			return nil, &Error{Code: CodeRequirement, Thing: thing,
				Reason: fmt.Sprintf("requires %s %s, the device runs %s %s", r.Component, r.Version, r.Component, have),
				Next:   fmt.Sprintf("update %s first, then flash this target", r.Component)}
		}
	}

	slot := 0
	switch protocol {
	case "dfu":
		if meta.Protocol.DFUAlt != nil {
			slot = *meta.Protocol.DFUAlt
		}
	default:
		if meta.Protocol.ImageSlot != nil {
			slot = *meta.Protocol.ImageSlot
		}
	}
	if err := checkSlots(id, slot, t, thing); err != nil {
		return nil, err
	}

	var sum [32]byte
	if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
		return nil, &Error{Code: CodeNoTarget, Thing: thing, Reason: "has no SHA-256 in its verified metadata", Next: "verify the bundle again"}
	} else {
		copy(sum[:], b)
	}

	// The device gets its bytes from a private copy, checked against the signed hash here,
	// before anything is sent; the bundle file is not read again.
	f, err := os.Open(v.Bundle)
	if err != nil {
		return nil, &Error{Code: CodeBundleChanged, Thing: "bundle " + v.Bundle, Reason: "cannot be opened again after verification: " + err.Error(), Next: "put the bundle back where it was and verify it again", Err: err}
	}
	src, err := copyVerified(io.NewSectionReader(f, t.Offset, t.Length), t.Length, sum)
	f.Close()
	if err != nil {
		return nil, &Error{Code: CodeBundleChanged, Thing: "bundle " + v.Bundle,
			Reason: fmt.Sprintf("%v (target %s); nothing was sent to the device", err, t.Path),
			Next:   "copy the bundle again from a trusted source and verify it before flashing", Err: err}
	}

	device := opt.Device
	if device == "" {
		device = hw
	}
	p := &Plan{
		Bundle:       v.Bundle,
		BundleDigest: v.Digest,
		Target:       t,
		Protocol:     protocol,
		Device:       device,
		HardwareID:   hw,
		From:         id,
		Options:      opt,
		source:       src,
		Image: Image{
			Name:           t.Path,
			Size:           t.Length,
			SHA256:         sum,
			Version:        meta.Version,
			ReleaseCounter: meta.ReleaseCounter,
			Component:      meta.Component,
			Slot:           slot,
			Address:        meta.Protocol.Address,
			Data:           src,
		},
	}
	switch {
	case t.Image != nil && t.Image.ImageHash != "":
		p.deviceHash, _ = hex.DecodeString(t.Image.ImageHash)
	case meta.Format == "mcuboot":
		// MCUboot devices report their slots by the image's own hash TLV.
		if m, err := mcuboot.Parse(io.NewSectionReader(src, 0, t.Length), t.Length); err == nil {
			p.deviceHash = m.ImageHash
		}
	}
	if meta.ReleaseNotes != "" {
		p.Notes = append(p.Notes, meta.ReleaseNotes)
	}
	if len(meta.Advisories) > 0 {
		p.Notes = append(p.Notes, "fixes "+strings.Join(meta.Advisories, ", "))
	}
	p.Notes = append(p.Notes, v.Warnings...)
	return p, nil
}

func portSuffix(port string) string {
	if port == "" {
		return ""
	}
	return " on " + port
}

func pickTarget(v *verify.Verified, name, hw, component, protocol string) (verify.Target, error) {
	if name != "" {
		for _, t := range v.Targets {
			if t.Path == name {
				if !slices.Contains(t.Meta.HardwareIDs, hw) {
					return t, &Error{Code: CodeHardware, Thing: "target " + t.Path,
						Reason: fmt.Sprintf("fits %s, not this device's hardware %s", strings.Join(t.Meta.HardwareIDs, ", "), hw),
						Next:   "use the bundle made for " + hw}
				}
				return t, nil
			}
		}
		return verify.Target{}, &Error{Code: CodeNoTarget, Thing: "bundle " + v.Bundle,
			Reason: fmt.Sprintf("has no target %q (it has %s)", name, targetList(v.Targets)),
			Next:   "name one of the bundle's targets"}
	}
	var fits []verify.Target
	for _, t := range v.Targets {
		if slices.Contains(t.Meta.HardwareIDs, hw) && (component == "" || t.Meta.Component == component) {
			fits = append(fits, t)
		}
	}
	// Prefer a target whose hints allow the device's protocol; otherwise the first that
	// fits, and the protocol check refuses it with a precise reason.
	for _, t := range fits {
		if len(t.Meta.Protocol.Protocols) == 0 || slices.Contains(t.Meta.Protocol.Protocols, protocol) {
			return t, nil
		}
	}
	if len(fits) > 0 {
		return fits[0], nil
	}
	what := "hardware " + hw
	if component != "" {
		what += " component " + component
	}
	return verify.Target{}, &Error{Code: CodeHardware, Thing: "bundle " + v.Bundle,
		Reason: fmt.Sprintf("has no target for %s (it has %s)", what, targetList(v.Targets)),
		Next:   "use the bundle made for " + hw}
}

func targetList(ts []verify.Target) string {
	if len(ts) == 0 {
		return "none"
	}
	var s []string
	for _, t := range ts {
		s = append(s, t.Path+" for "+strings.Join(t.Meta.HardwareIDs, "/"))
	}
	return strings.Join(s, ", ")
}

// checkSlots refuses an image larger than the slot it goes to. Which slot that is, is the
// driver's business (MCUmgr uploads to the secondary slot in the application and to the
// primary only in serial recovery, where the bootloader runs): the engine itself never
// erases. A device lists only the slots that hold an image, so an empty secondary slot is
// no sign of a device without one.
func checkSlots(id *Identity, image int, t verify.Target, thing string) error {
	for _, s := range id.Slots {
		// The running slot is never written in the application; a bootloader (recovery or
		// classic) writes over the image it holds, so that slot's size is what counts.
		if s.Image != image || s.Size <= 0 || (s.Active && id.Mode != ModeRecovery && id.Mode != ModeBootloader) {
			continue
		}
		if t.Length > s.Size {
			return &Error{Code: CodeSlotSize, Thing: thing,
				Reason: fmt.Sprintf("is %d bytes, slot %d of image %d holds %d", t.Length, s.Slot, image, s.Size),
				Next:   "this release does not fit this device's flash layout; ask for a build for its partition table"}
		}
	}
	return nil
}

// hardwareFor lists the hardware ids of the bundle's targets that may go over protocol.
func hardwareFor(v *verify.Verified, protocol string) []string {
	var out []string
	for _, t := range v.Targets {
		if len(t.Meta.Protocol.Protocols) > 0 && !slices.Contains(t.Meta.Protocol.Protocols, protocol) {
			continue
		}
		for _, h := range t.Meta.HardwareIDs {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return out
}
