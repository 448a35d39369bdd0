package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/transports/usb"
	"github.com/fieldflash/fieldflash/verify"
)

// USB DFU devices join the session like serial ports: listed (ListUSB, WatchUSB), fitted
// against a bundle (CheckFitUSB), picked by VID:PID[,serial] or by the bundle's hardware ids
// (FlashRequest.USB), flashed and recovered (ProbeRecoveryUSB, Session.Recover) through the
// same engine, journal and events.

// USBDevice is one DFU interface on the bus, as `fieldflash devices` shows it.
type USBDevice struct {
	Info  *dfu.DeviceInfo `json:"info"`
	Error string          `json:"error,omitempty"` // what could not be read (permissions)
}

// Key names the device in a face's lists, the same across a re-enumeration: its serial
// number (a device keeps it when it detaches into DFU mode and gets other ids), else its
// port.
func (d USBDevice) Key() string {
	if d.Info.Serial != "" {
		return "usb:" + d.Info.Serial
	}
	return "usb@" + d.Info.Path
}

// Spec is what picks this very device in FlashRequest.USB and ProbeRecoveryUSB:
// "0483:df11,325A36713137", or "VID:PID@PORT" for a device without a serial number.
func (d USBDevice) Spec() string { return dfu.MatchOf(d.Info).Spec() }

// Name is what the device calls itself (its product string, escaped), else its ids.
func (d USBDevice) Name() string {
	if p := strings.TrimSpace(d.Info.Product); p != "" {
		return dfu.Printable(p)
	}
	return "USB " + d.Info.ID()
}

// Describe is the device in one line: ids, serial, port, mode, DFU version, transfer size,
// and the alternate settings' names (escaped: they come from the device).
func (d USBDevice) Describe() string {
	i := d.Info
	s := "USB " + i.ID()
	if m := strings.TrimSpace(i.Manufacturer + " " + i.Product); m != "" {
		s += " " + dfu.Printable(m)
	}
	if i.Serial != "" {
		s += ", serial " + dfu.Printable(i.Serial)
	}
	s += ", port " + i.Path
	if d.Error != "" {
		return s + "; cannot be opened: " + d.Error
	}
	s += fmt.Sprintf(", %s, %s, transfer size %d", i.Mode(), dfu.VersionString(i.Functional.Version), i.Functional.TransferSize)
	var alts []string
	for _, a := range i.Alts {
		if a.Name != "" {
			alts = append(alts, fmt.Sprintf("%d %s", a.Setting, dfu.Printable(a.Name)))
		}
	}
	if len(alts) > 0 {
		s += "; alternate settings " + strings.Join(alts, ", ")
	}
	return s
}

// Facts are the device in three parts, for a list: who it is (ids, names, serial, port),
// its DFU interface (mode, version, transfer size, attributes), and one line per
// alternate setting with its name or, for DfuSe, its parsed memory layout. Text from the
// device is escaped.
func (d USBDevice) Facts() (who, dfuLine string, alts []string) {
	i := d.Info
	who = "USB " + i.ID()
	if m := strings.TrimSpace(i.Manufacturer + " " + i.Product); m != "" {
		who += " · " + dfu.Printable(m)
	}
	if i.Serial != "" {
		who += " · serial " + dfu.Printable(i.Serial)
	}
	who += " · port " + i.Path
	if d.Error != "" {
		return who, "cannot be opened: " + d.Error, nil
	}
	f := i.Functional
	dfuLine = fmt.Sprintf("%s · %s · transfer size %d · %s", i.Mode(), dfu.VersionString(f.Version), f.TransferSize, f.Attributes)
	for _, a := range i.Alts {
		switch {
		case a.Layout != nil:
			alts = append(alts, fmt.Sprintf("alternate setting %d: %s", a.Setting, dfu.Printable(a.Layout.String())))
		case a.Name != "":
			alts = append(alts, fmt.Sprintf("alternate setting %d: %s", a.Setting, dfu.Printable(a.Name)))
		}
	}
	return who, dfuLine, alts
}

// USBAvailable says whether this build reaches USB devices (cgo and libusb).
const USBAvailable = usb.Available

// ErrUSBNeedsFullBuild is what a CGO_ENABLED=0 build answers for every USB request.
var ErrUSBNeedsFullBuild = usb.ErrNeedsFullBuild

// USBBus is where DFU devices are found and opened (this machine's USB, or virtual
// devices: StartVirtualUSB).
type USBBus = dfu.Bus

var (
	busMu      sync.Mutex
	currentBus USBBus = dfu.SystemBus
)

func usbBus() USBBus {
	busMu.Lock()
	defer busMu.Unlock()
	return currentBus
}

// SetUSBBus makes every USB function of this process use b instead of this machine's
// USB, until restore is called: StartVirtualUSB does so for the demo and the tests.
func SetUSBBus(b USBBus) (restore func()) {
	busMu.Lock()
	prev := currentBus
	currentBus = b
	busMu.Unlock()
	return func() {
		busMu.Lock()
		currentBus = prev
		busMu.Unlock()
	}
}

// ListUSB lists the USB devices with a DFU interface, in run-time or DFU mode.
func ListUSB(ctx context.Context) ([]USBDevice, error) {
	found, err := usbBus().Find(ctx, dfu.Match{})
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
// from the last one, and once at the start (gousb has no hotplug: this polls), until ctx
// ends. A device already read is not asked again while it stays on the bus.
func WatchUSB(ctx context.Context, interval time.Duration, changed func([]USBDevice, error)) {
	last := "\x00"
	for {
		list, err := ListUSB(ctx)
		key := fmt.Sprint(err)
		for _, d := range list {
			key += "|" + d.Info.ID() + d.Info.Serial + d.Info.Path + d.Info.Mode() + d.Error
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

// CheckFitUSB runs the preflight of an update of the DFU device d with the bundle v,
// without a request to the device: the bundle must have a target for the device's USB ids
// (protocol hints, or a DFU file's suffix), the plan must hold (rollback, requirements),
// and the image must go onto the device (alternate setting, DfuSe memory layout). A DFU
// device does not say what it runs, so Fit.Running is "unknown".
func CheckFitUSB(v *Verified, d USBDevice) Fit {
	switch {
	case v == nil:
		return Fit{Reason: "open a bundle first"}
	case d.Error != "":
		return Fit{Reason: "the device cannot be opened: " + d.Error}
	}
	hws := usbHardware(v, d.Info)
	if len(hws) == 0 {
		return Fit{Code: flasher.CodeHardware, Running: "unknown",
			Reason: fmt.Sprintf("no target of the bundle names USB %s (protocol hints usb_vendor/usb_product, or a DFU file's suffix); use the bundle made for this device", d.Info.ID())}
	}
	id := dfuIdentity(d.Info)
	var why []string
	for _, hw := range hws {
		plan, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{Protocol: "dfu", HardwareID: hw, Port: "usb " + d.Info.Path})
		if err != nil {
			why = append(why, reasonOf(err))
			continue
		}
		// A run-time interface shows the DFU-mode alternate settings only after the detach.
		if !d.Info.Runtime() {
			if err := dfu.CheckImage(d.Info, &plan.Image); err != nil {
				plan.Close()
				why = append(why, strings.TrimPrefix(err.Error(), "dfu: "))
				continue
			}
		}
		f := Fit{OK: true, Target: plan.Target.Path, Version: plan.Target.Meta.Version, Running: "unknown"}
		plan.Close()
		return f
	}
	return Fit{Code: flasher.CodeHardware, Running: "unknown", Reason: strings.Join(why, "; ")}
}

// dfuIdentity is what the DFU driver's Identify reports of a device, before it is asked.
func dfuIdentity(info *dfu.DeviceInfo) *flasher.Identity {
	id := &flasher.Identity{Protocol: "dfu", BufferSize: info.Functional.TransferSize, Mode: flasher.ModeBootloader}
	if info.Runtime() {
		id.Mode = flasher.ModeApplication
	}
	return id
}

func reasonOf(err error) string {
	var fe *flasher.Error
	if asFlashError(err, &fe) {
		if fe.Next != "" {
			return fe.Reason + "; " + fe.Next
		}
		return fe.Reason
	}
	return err.Error()
}

// pickUSB finds the one DFU device spec names: "VID:PID[,SERIAL]", or "auto" (also "")
// for the one connected DFU device that the bundle's targets fit (without a bundle: the
// one connected DFU device). A device that is not there is ErrGone.
//
// lenient (a recovery) takes the one connected DFU device even when the bundle has no
// target for its ids: a device stuck in DFU mode often enumerates with other ids than its
// application's, which the bundle names, and what state it is in is worth saying anyway.
func pickUSB(ctx context.Context, bus USBBus, spec string, v *Verified, lenient bool) (dfu.Match, error) {
	if spec != "auto" && spec != "" {
		return dfu.ParseMatch(spec)
	}
	found, err := bus.Find(ctx, dfu.Match{})
	if err != nil {
		return dfu.Match{}, err
	}
	var all, fits []*dfu.DeviceInfo
	var names []string
	for _, f := range found {
		names = append(names, f.Info.String())
		if f.Err != nil {
			continue
		}
		all = append(all, f.Info)
		if v != nil && len(usbHardware(v, f.Info)) > 0 {
			fits = append(fits, f.Info)
		}
	}
	pick := fits
	if v == nil || (lenient && len(fits) == 0 && len(all) == 1) {
		pick = all
	}
	switch {
	case len(pick) == 1:
		return dfu.MatchOf(pick[0]), nil
	case len(found) == 0:
		return dfu.Match{}, fmt.Errorf("no USB DFU device is connected: %w", dfu.ErrGone)
	case len(pick) == 0 && len(all) == 0:
		return dfu.Match{}, fmt.Errorf("%s: %s", names[0], found[0].Err)
	case len(pick) == 0:
		return dfu.Match{}, &flasher.Error{Code: flasher.CodeHardware, Thing: "bundle " + v.Bundle,
			Reason: fmt.Sprintf("has no DFU target for the USB devices connected (%s)", orNone(names)),
			Next:   "connect the device in DFU mode, or name it with --usb VID:PID[,SERIAL] (fieldflash devices lists them)"}
	}
	var s []string
	for _, f := range pick {
		s = append(s, f.String())
	}
	return dfu.Match{}, &flasher.Error{Code: flasher.CodeWrongDevice, Thing: "USB",
		Reason: "several connected DFU devices could be meant: " + strings.Join(s, "; "),
		Next:   "name one with --usb VID:PID,SERIAL"}
}

// openUSB opens the device of req.USB.
func openUSB(ctx context.Context, bus USBBus, req FlashRequest) (dfu.Conn, error) {
	m, err := pickUSB(ctx, bus, req.USB, req.Bundle, false)
	if err != nil {
		return nil, err
	}
	return bus.Open(ctx, m)
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
	bus := usbBus()
	c, err := openUSB(ctx, bus, req)
	if err != nil {
		st := StatusEnvironment
		if flasher.CodeOf(err) != "" {
			st = StatusRefused
		}
		if errors.Is(err, dfu.ErrGone) {
			st = StatusDevice
			err = &flasher.Error{Code: flasher.CodeDeviceLost, Thing: "USB " + req.USB, Reason: err.Error(), Next: USBSilentHint(req.USB), Err: err}
		}
		return fail(st, err)
	}
	info := c.Info()
	res.Port = "usb " + info.Path
	if req.Port == "" {
		// Named by its ids (flash --usb): the events say where it was found.
		inner := emit
		emit = func(ev Event) { ev.Port = res.Port; inner(ev) }
	}
	reopen := dfu.ReopenOn(bus, info)
	d := dfu.New(c, dfu.Options{Reopen: reopen})
	id, err := d.Identify(ctx)
	if err != nil {
		d.Close()
		return fail(StatusDevice, &flasher.Error{Code: flasher.CodeDeviceLost, Thing: info.String(), Reason: "does not answer DFU requests: " + err.Error(),
			Next: flasher.RecoveryHint("dfu", res.Port), Err: err})
	}
	emit(Event{Event: flasher.Event{Kind: KindIdentified}, Identity: id})
	if found := d.Found(); found != nil {
		emit(Event{Event: flasher.Event{Step: flasher.StepPreflight, Kind: KindNote,
			Message: fmt.Sprintf("the device is in %s with status %s (%s): it is cleared with CLRSTATUS before the download", found.State, found.Status, found.Status.Meaning())}})
	}
	res.Before = id
	hw := req.Hardware
	if hw == "" {
		if hws := usbHardware(req.Bundle, info); len(hws) == 1 {
			hw = hws[0]
		}
	}
	resumes := resumeWatch(res, emit)
	watch := func(d *dfu.Driver) flasher.Driver { return checkReporting{resumes(d), d} }
	devID := hw + "/" + info.Serial
	if info.Serial == "" {
		devID = hw + "@usb-" + info.Path
	}
	plan, err := flasher.NewPlan(req.Bundle, req.Target, id, flasher.PlanOptions{
		Protocol: "dfu", HardwareID: hw, Device: devID, Port: res.Port, Retry: req.Retry, DepartWait: req.DepartWait,
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			// A device that re-enumerates is back within a second or so; one that is not
			// is a failed attempt, so the engine's retries (and their limit) count it.
			rctx, cancel := context.WithTimeout(ctx, usbReopenWait)
			defer cancel()
			c, err := reopen(rctx)
			if err != nil {
				return nil, err
			}
			return watch(dfu.New(c, dfu.Options{Reopen: reopen})), nil
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
	o, err := flasher.Run(ctx, plan, watch(d), journal, func(ev flasher.Event) { emit(Event{Event: ev}) })
	res.Outcome, res.Err = o, err
	res.Status = outcomeStatus(ctx, o, err)
	return res
}

// checkReporting keeps a wrapped DFU driver's word on how it checked the image (read
// back, or the device's own check), which the engine shows at the check step.
type checkReporting struct {
	flasher.Driver
	r flasher.CheckReporter
}

func (c checkReporting) CheckReport() string { return c.r.CheckReport() }

// resumeWatch wraps drivers so that every resume offset the device reports lands in
// res.Resumes, and one after a reconnect in the middle is said.
func resumeWatch(res *FlashResult, emit func(Event)) func(flasher.Driver) flasher.Driver {
	var mu sync.Mutex
	return func(d flasher.Driver) flasher.Driver {
		return &watchedDriver{Driver: d, onResume: func(off int64) {
			mu.Lock()
			res.Resumes = append(res.Resumes, off)
			n := len(res.Resumes)
			mu.Unlock()
			if n > 1 && off > 0 {
				emit(Event{Event: flasher.Event{Step: flasher.StepTransfer, Kind: KindNote,
					Message: fmt.Sprintf("the device is back and holds %d bytes; resuming there", off)}})
			}
		}}
	}
}

// usbReopenWait is how long one reconnect attempt waits for a DFU device to come back.
const usbReopenWait = 2 * time.Second

// USBSilentHint is the next step when no DFU device answers to spec: how to bring the
// usual boards into DFU mode, and the permission that hides a device that is there.
func USBSilentHint(spec string) string {
	again := "fieldflash recover --usb " + orAuto(spec)
	return "Check that the cable carries data (not a charge-only one) and the device is powered. " +
		"An STM32 comes up in its ROM DFU bootloader (0483:df11) when BOOT0 is held high while it is reset or powered on (the BOOT0 jumper or button). " +
		"A Zephyr/MCUboot board enters its DFU mode when its DFU (BOOT) button is held while it is plugged in. " +
		"If lsusb lists the device but fieldflash does not, install the udev rule from the README (Linux) or the WinUSB driver (Windows). " +
		"Then run `" + again + "` again"
}

func orAuto(spec string) string {
	if spec == "" {
		return "auto"
	}
	return spec
}

// PrintableUSB escapes text a USB device sent (string descriptors) for a terminal.
func PrintableUSB(s string) string { return dfu.Printable(s) }

// DFUVersion names a bcdDFUVersion ("DFU 1.1", "DfuSe (1.1a)").
func DFUVersion(v uint16) string { return dfu.VersionString(v) }

// CheckUSBSpec says whether spec names a USB device as FlashRequest.USB and
// ProbeRecoveryUSB read it ("auto", "VID:PID", "VID:PID,SERIAL", "VID:PID@PORT").
func CheckUSBSpec(spec string) error {
	if spec == "auto" {
		return nil
	}
	_, err := dfu.ParseMatch(spec)
	return err
}
