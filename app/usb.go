package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/transports/usb"
	"github.com/fieldflash/fieldflash/verify"
)

// USB DFU devices join the session like serial ports: listed (ListUSB), picked by
// VID:PID[,serial] or by the bundle's hardware ids (FlashRequest.USB), flashed through the
// same engine, journal and events.

// USBDevice is one DFU interface on the bus, as `fieldflash devices` shows it.
type USBDevice struct {
	Info  *dfu.DeviceInfo `json:"info"`
	Error string          `json:"error,omitempty"` // what could not be read (permissions)
}

// USBAvailable says whether this build reaches USB devices (cgo and libusb).
const USBAvailable = usb.Available

// ErrUSBNeedsFullBuild is what a CGO_ENABLED=0 build answers for every USB request.
var ErrUSBNeedsFullBuild = usb.ErrNeedsFullBuild

// ListUSB lists the USB devices with a DFU interface, in run-time or DFU mode.
func ListUSB(ctx context.Context) ([]USBDevice, error) {
	found, err := dfu.Find(ctx, dfu.Match{})
	if err != nil {
		return nil, err
	}
	out := make([]USBDevice, 0, len(found))
	for _, f := range found {
		d := USBDevice{Info: f.Info}
		if f.Err != nil {
			d.Error = f.Err.Error()
		}
		out = append(out, d)
	}
	return out, nil
}

// WatchUSB calls changed with the list of DFU devices every interval while it differs
// from the last one (gousb has no hotplug: this polls), until ctx ends.
func WatchUSB(ctx context.Context, interval time.Duration, changed func([]USBDevice, error)) {
	last := "\x00"
	for {
		list, err := ListUSB(ctx)
		key := fmt.Sprint(err)
		for _, d := range list {
			key += "|" + d.Info.ID() + d.Info.Serial + d.Info.Path + d.Info.Mode()
		}
		if key != last {
			last = key
			changed(list, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// usbFits says whether target t is for a DFU device with these ids.
func usbFits(t verify.Target, info *dfu.DeviceInfo) bool {
	h := t.Meta.Protocol
	if len(h.Protocols) > 0 && !slices.Contains(h.Protocols, "dfu") {
		return false
	}
	ok := func(want *uint16, ids ...uint16) bool {
		if want == nil {
			return false
		}
		for _, id := range ids {
			if id != 0 && id == *want {
				return true
			}
		}
		return false
	}
	if h.USBVendor == nil || h.USBProduct == nil {
		// Without ids in the hints, the DFU file's own suffix ids say which device.
		if t.Image == nil || (t.Image.Format != "dfu" && t.Image.Format != "dfuse") {
			return false
		}
		return (t.Image.USBVendor == 0xffff || t.Image.USBVendor == info.VendorID || t.Image.USBVendor == info.RuntimeVendorID) &&
			(t.Image.USBProduct == 0xffff || t.Image.USBProduct == info.ProductID || t.Image.USBProduct == info.RuntimeProductID)
	}
	return ok(h.USBVendor, info.VendorID, info.RuntimeVendorID) && ok(h.USBProduct, info.ProductID, info.RuntimeProductID)
}

// usbHardware is the hardware id of the bundle's targets that fit the device.
func usbHardware(v *verify.Verified, info *dfu.DeviceInfo) []string {
	var out []string
	for _, t := range v.Targets {
		if usbFits(t, info) {
			for _, h := range t.Meta.HardwareIDs {
				if !slices.Contains(out, h) {
					out = append(out, h)
				}
			}
		}
	}
	return out
}

// openUSB finds the device of req: by req.USB ("VID:PID[,serial]"), or, with req.USB
// "auto", the one DFU device the bundle's targets fit.
func openUSB(ctx context.Context, req FlashRequest) (dfu.Conn, error) {
	if req.USB != "auto" {
		m, err := dfu.ParseMatch(req.USB)
		if err != nil {
			return nil, err
		}
		return dfu.OpenUSB(ctx, m)
	}
	found, err := dfu.Find(ctx, dfu.Match{})
	if err != nil {
		return nil, err
	}
	var fits []*dfu.DeviceInfo
	var names []string
	for _, f := range found {
		names = append(names, f.Info.String())
		if f.Err == nil && len(usbHardware(req.Bundle, f.Info)) > 0 {
			fits = append(fits, f.Info)
		}
	}
	switch len(fits) {
	case 0:
		return nil, &flasher.Error{Code: flasher.CodeHardware, Thing: "bundle " + req.Bundle.Bundle,
			Reason: fmt.Sprintf("has no DFU target for the USB devices connected (%s)", orNone(names)),
			Next:   "connect the device in DFU mode, or name it with --usb VID:PID[,SERIAL] (fieldflash devices lists them)"}
	case 1:
		return dfu.OpenUSB(ctx, dfu.Match{VendorID: fits[0].VendorID, ProductID: fits[0].ProductID, Serial: fits[0].Serial, Port: fits[0].Path})
	}
	var s []string
	for _, f := range fits {
		s = append(s, f.String())
	}
	return nil, &flasher.Error{Code: flasher.CodeWrongDevice, Thing: "USB",
		Reason: "several connected devices fit the bundle: " + strings.Join(s, "; "),
		Next:   "name one with --usb VID:PID,SERIAL"}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// runFlashUSB is runFlash for a USB DFU device.
func runFlashUSB(ctx context.Context, req FlashRequest, emit func(Event), fail func(Status, error) *FlashResult, res *FlashResult) *FlashResult {
	res.Protocol = "dfu"
	c, err := openUSB(ctx, req)
	if err != nil {
		st := StatusEnvironment
		if flasher.CodeOf(err) != "" {
			st = StatusRefused
		}
		if errors.Is(err, dfu.ErrGone) {
			st = StatusDevice
		}
		return fail(st, err)
	}
	info := c.Info()
	res.Port = "usb " + info.Path
	reopen := dfu.ReopenUSB(info)
	d := dfu.New(c, dfu.Options{Reopen: reopen})
	id, err := d.Identify(ctx)
	if err != nil {
		d.Close()
		return fail(StatusDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: info.String(), Reason: "does not answer DFU requests: " + err.Error(),
			Next: flasher.RecoveryHint("dfu", res.Port), Err: err})
	}
	emit(Event{Event: flasher.Event{Kind: KindIdentified}, Identity: id})
	res.Before = id
	hw := req.Hardware
	if hw == "" {
		if hws := usbHardware(req.Bundle, info); len(hws) == 1 {
			hw = hws[0]
		}
	}
	devID := hw + "/" + info.Serial
	if info.Serial == "" {
		devID = hw + "@usb-" + info.Path
	}
	plan, err := flasher.NewPlan(req.Bundle, req.Target, id, flasher.PlanOptions{
		Protocol: "dfu", HardwareID: hw, Device: devID, Port: res.Port, Retry: req.Retry,
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			c, err := reopen(ctx)
			if err != nil {
				return nil, err
			}
			return dfu.New(c, dfu.Options{Reopen: reopen}), nil
		},
	})
	if err != nil {
		d.Close()
		if flasher.CodeOf(err) == flasher.CodeHardware && hw == "" {
			err = &flasher.Error{Code: flasher.CodeHardware, Thing: info.String(),
				Reason: "no target of the bundle names this device's USB ids (protocol hints usb_vendor/usb_product, or a DFU file's suffix)",
				Next:   "pass the device's hardware id with --hardware, or use the bundle made for this device", Err: err}
		}
		return fail(planStatus(err), err)
	}
	defer plan.Close()
	res.Target, res.Version, res.Hardware = plan.Target.Path, plan.Target.Meta.Version, plan.HardwareID
	emit(Event{Event: flasher.Event{Kind: KindPlanned}, Plan: &PlanSummary{
		Target: plan.Target.Path, Version: plan.Target.Meta.Version, ReleaseCounter: plan.Target.Meta.ReleaseCounter,
		Size: plan.Image.Size, Slot: plan.Image.Slot, Protocol: plan.Protocol, HardwareID: plan.HardwareID, Notes: plan.Notes}})
	journal, err := flasher.OpenJournal(req.JournalDir, plan.JournalKey())
	if err != nil {
		d.Close()
		return fail(StatusEnvironment, err)
	}
	if prev := journal.Load(); prev != nil && !prev.Finished {
		emit(Event{Event: flasher.Event{Kind: KindResuming}, Earlier: prev})
	}
	o, err := flasher.Run(ctx, plan, d, journal, func(ev flasher.Event) { emit(Event{Event: ev}) })
	res.Outcome, res.Err = o, err
	res.Status = outcomeStatus(ctx, o, err)
	return res
}

// PrintableUSB escapes text a USB device sent (string descriptors) for a terminal.
func PrintableUSB(s string) string { return dfu.Printable(s) }

// DFUVersion names a bcdDFUVersion ("DFU 1.1", "DfuSe (1.1a)").
func DFUVersion(v uint16) string { return dfu.VersionString(v) }
