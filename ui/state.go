//go:build cgo

package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/data/binding"

	"github.com/fieldflash/fieldflash/app"
)

// Options start the desktop app.
type Options struct {
	// Bundle is a bundle to open at once (a path given on the command line).
	Bundle string
	// Demo, when set, is the demo: its bundle opens at once, its session trusts the demo
	// root, and its virtual devices get a "pull the cable" button.
	Demo *app.Demo
	// WatchEvery is how often the device list is refreshed (default 1 s).
	WatchEvery time.Duration
	// Retry is how long an update waits for a device that stopped answering; zero: a
	// person's patience (about a minute and a half).
	Retry app.RetryPolicy
	// DepartWait is how long a USB DFU device that left the bus after its download may
	// take to come back before it counts as running its new image; zero: the engine's.
	DepartWait time.Duration
	// Do runs a function on the UI goroutine; default fyne.Do. Tests pass a queue they
	// drain on their own goroutine, so device goroutines never touch widgets directly.
	Do func(func())
}

// BundleState is the open bundle: verified, refused, or being verified.
type BundleState struct {
	Path      string
	Verifying bool
	Verified  *app.Verified
	Err       error // the refusal, when Verified is nil
}

// DeviceRow is one device of the live device list with what is known of it: a serial
// port (or a virtual device on one), or a USB DFU device.
type DeviceRow struct {
	// Port is the serial port; for a USB DFU device, Path is its key (app.USBDevice.Key:
	// "usb:SERIAL"), the same across a re-enumeration.
	Port    app.Port
	Probe   *app.Probe // nil until asked
	Probing bool
	Fit     *app.Fit // against the open bundle; nil without a bundle or an identity
	// USB is the DFU device, nil for a serial port; USBState what it said when asked
	// (the recovery probe's answer: DFU mode, dfuERROR, run-time, …).
	USB      *app.USBDevice
	USBState *app.Recovery
}

// Key is what names the row in the list, the picked set and the update's jobs.
func (d *DeviceRow) Key() string { return d.Port.Path }

// Where says where the device is, for a job's title: the port, or "USB 0483:df11 (port 1-2)".
func (d *DeviceRow) Where() string {
	if d.USB != nil {
		return "USB " + d.USB.Info.ID() + " (port " + d.USB.Info.Path + ")"
	}
	return d.Port.Path
}

// Name is what the row is called: hardware id, else product, else the port.
func (d *DeviceRow) Name() string {
	if d.Probe != nil && d.Probe.Identity != nil && d.Probe.Identity.HardwareID != "" {
		return d.Probe.Identity.HardwareID
	}
	if d.USB != nil {
		return d.USB.Name()
	}
	if d.Port.Product != "" {
		return d.Port.Product
	}
	if d.Port.Name != "" {
		return d.Port.Name
	}
	return d.Port.Path
}

// State is the desktop app's model, shared by every screen. Its fields change only on
// the UI goroutine; device work runs on goroutines of its own and comes back through do.
// Screens watch the bindings.
type State struct {
	opt      Options
	home     string
	Session  *app.Session
	Settings app.Settings

	// Bundle holds a *BundleState, Devices a []*DeviceRow, Jobs the current *Batch
	// (nil before the first update). Selected holds the ports picked for an update.
	Bundle   binding.Untyped
	Devices  binding.Untyped
	Jobs     binding.Untyped
	Selected binding.StringList
	// BatchRev ticks whenever a job of the current batch changes.
	BatchRev binding.Int
	// TrustRev ticks when the trust store changed (a root pinned or removed).
	TrustRev binding.Int
	// Status is a one-line message for the status bar.
	Status binding.String
	// Mode is app.ModeTechnician or app.ModeSimple.
	Mode binding.String

	ctx    context.Context
	cancel context.CancelFunc
	trace  *tracer // the measurement hook, when on

	// The last lists the watchers gave (UI goroutine only).
	ports  []app.Port
	usb    []app.USBDevice
	usbErr string

	mu       sync.Mutex
	probed   map[string]*app.Probe // port -> last probe, kept across list refreshes
	usbState map[string]*app.Recovery
	inFlight map[string]bool
	busy     map[string]bool // ports an update or recovery holds: not probed meanwhile
	// hardware is the hardware id a person picked for a port whose device does not say
	// it (stock Zephyr, a classic bootloader): read off the board's label.
	hardware map[string]string
}

// NewState opens the session (demo mode with a demo) and the settings, and starts
// watching devices. Close stops it.
func NewState(opt Options) (*State, error) {
	if opt.Do == nil {
		opt.Do = fyne.Do
	}
	if opt.WatchEvery == 0 {
		opt.WatchEvery = time.Second
	}
	home, err := app.Home()
	if err != nil {
		return nil, err
	}
	s := &State{opt: opt, home: home, probed: map[string]*app.Probe{}, usbState: map[string]*app.Recovery{}, inFlight: map[string]bool{}, busy: map[string]bool{}, hardware: map[string]string{}}
	if opt.Demo != nil {
		s.Session = opt.Demo.Session
	} else if s.Session, err = app.OpenSession(false); err != nil {
		return nil, err
	}
	s.Settings, err = app.LoadSettings(home)
	s.Bundle = binding.NewUntyped()
	s.Devices = binding.NewUntyped()
	s.Jobs = binding.NewUntyped()
	s.Selected = binding.NewStringList()
	s.BatchRev = binding.NewInt()
	s.TrustRev = binding.NewInt()
	s.Status = binding.NewString()
	s.Mode = binding.NewString()
	s.Bundle.Set((*BundleState)(nil))
	s.setRows(nil)
	s.Jobs.Set((*Batch)(nil))
	s.Mode.Set(s.Settings.Mode)
	if err != nil {
		s.Status.Set(err.Error())
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go app.WatchDevices(s.ctx, opt.WatchEvery, func(ports []app.Port, err error) {
		s.do(func() { s.portsChanged(ports, err) })
	})
	if app.USBAvailable {
		// USB DFU devices are polled (gousb has no hotplug); one already read is not
		// asked again while it stays on the bus, so an update under way is not disturbed.
		go app.WatchUSB(s.ctx, opt.WatchEvery, func(list []app.USBDevice, err error) {
			s.do(func() { s.usbChanged(list, err) })
		})
	}
	switch {
	case opt.Demo != nil:
		s.OpenBundle(opt.Demo.Bundle)
	case opt.Bundle != "":
		s.OpenBundle(opt.Bundle)
	}
	return s, nil
}

// Close stops watching devices and cancels every update under way (each resumes later).
func (s *State) Close() {
	s.cancel()
	if b := s.batch(); b != nil {
		b.Cancel()
	}
}

// Demo is the demo, or nil outside demo mode.
func (s *State) Demo() *app.Demo { return s.opt.Demo }

func (s *State) do(f func()) { s.opt.Do(f) }

// go runs device work off the UI goroutine.
func (s *State) goWork(f func()) { go f() }

// --- bundle -----------------------------------------------------------------------------

// OpenBundle verifies the bundle at path off the UI goroutine and shows the verdict.
func (s *State) OpenBundle(path string) {
	s.Bundle.Set(&BundleState{Path: path, Verifying: true})
	s.Status.Set("Checking " + path + " …")
	s.goWork(func() {
		v, err := s.Session.Verify(path, app.VerifyOptions{})
		s.do(func() {
			s.Bundle.Set(&BundleState{Path: path, Verified: v, Err: err})
			if err != nil {
				s.Status.Set("The bundle was refused: nothing can be flashed from it.")
			} else {
				s.Status.Set("Bundle trusted: " + v.Repository)
			}
			s.refit()
		})
	})
}

// Verified is the open bundle if it verified, else nil.
func (s *State) Verified() *app.Verified {
	b := s.bundle()
	if b == nil {
		return nil
	}
	return b.Verified
}

func (s *State) bundle() *BundleState {
	v, _ := s.Bundle.Get()
	b, _ := v.(*BundleState)
	return b
}

// --- devices ----------------------------------------------------------------------------

// Rows is the device list as shown now.
func (s *State) Rows() []*DeviceRow {
	v, _ := s.Devices.Get()
	if l, ok := v.(*deviceList); ok {
		return l.rows
	}
	return nil
}

// deviceList boxes the rows: a binding compares values, and a slice does not compare.
type deviceList struct{ rows []*DeviceRow }

func (s *State) setRows(rows []*DeviceRow) { s.Devices.Set(&deviceList{rows}) }

// Row is the row of port, or nil.
func (s *State) Row(port string) *DeviceRow {
	for _, r := range s.Rows() {
		if r.Port.Path == port {
			return r
		}
	}
	return nil
}

func (s *State) portsChanged(ports []app.Port, err error) {
	if err != nil {
		s.Status.Set(err.Error())
	}
	s.ports = ports
	s.rebuild()
}

// usbChanged takes a new list of USB DFU devices.
func (s *State) usbChanged(list []app.USBDevice, err error) {
	if err != nil && s.usbErr != err.Error() {
		s.Status.Set("USB: " + err.Error())
	}
	s.usbErr = ""
	if err != nil {
		s.usbErr = err.Error()
	}
	// A device that came back in another mode (a detach, a reboot into its application)
	// is asked afresh: what it said before is no longer what it is.
	s.mu.Lock()
	for _, d := range list {
		k := d.Key()
		if old := s.usbState[k]; old != nil && (old.USB.Info.ID() != d.Info.ID() || old.USB.Info.Protocol != d.Info.Protocol) {
			delete(s.usbState, k)
			delete(s.probed, k)
		}
	}
	s.mu.Unlock()
	s.usb = list
	s.rebuild()
}

// rebuild makes the rows from the last lists of serial ports and USB DFU devices.
func (s *State) rebuild() {
	rows := make([]*DeviceRow, 0, len(s.ports)+len(s.usb))
	s.mu.Lock()
	for _, p := range s.ports {
		r := &DeviceRow{Port: p, Probe: s.probed[p.Path], Probing: s.inFlight[p.Path]}
		rows = append(rows, r)
	}
	for _, d := range s.usb {
		d := d
		k := d.Key()
		p := app.Port{Path: k, USB: true, VID: fmt.Sprintf("%04x", d.Info.VendorID), PID: fmt.Sprintf("%04x", d.Info.ProductID),
			SerialNumber: d.Info.Serial, Manufacturer: d.Info.Manufacturer, Product: d.Info.Product}
		rows = append(rows, &DeviceRow{Port: p, USB: &d, Probe: s.probed[k], USBState: s.usbState[k], Probing: s.inFlight[k]})
	}
	// A device that went away is forgotten: whatever comes back there is asked afresh.
	for key := range s.probed {
		if !slices.ContainsFunc(rows, func(r *DeviceRow) bool { return r.Key() == key }) {
			delete(s.probed, key)
			delete(s.usbState, key)
		}
	}
	s.mu.Unlock()
	s.setRows(rows)
	s.refit()
	// New USB and virtual devices are asked by themselves: they are what a technician
	// plugs in. A built-in serial port (a console, a modem) is asked only on request.
	if s.Settings.AskDevices {
		for _, r := range rows {
			if r.Probe == nil && (r.Port.USB || r.Port.Virtual) {
				s.Probe(r.Port.Path)
			}
		}
	}
	// Ports picked for an update that went away are no longer picked.
	sel, _ := s.Selected.Get()
	keep := slices.DeleteFunc(slices.Clone(sel), func(p string) bool { return s.Row(p) == nil })
	if len(keep) != len(sel) {
		s.Selected.Set(keep)
	}
}

// Probe asks the device on port what it is, off the UI goroutine.
func (s *State) Probe(port string) {
	s.mu.Lock()
	if s.inFlight[port] || s.busy[port] {
		s.mu.Unlock()
		return
	}
	s.inFlight[port] = true
	s.mu.Unlock()
	s.setRow(port, func(r *DeviceRow) { r.Probing = true })
	if r := s.Row(port); r != nil && r.USB != nil {
		s.probeUSB(port, r.USB.Spec())
		return
	}
	baud := s.Settings.Baud
	order := []string(nil)
	if r := s.Row(port); r != nil && r.Port.Protocol == "ymodem" {
		order = []string{"ymodem", "smp"}
	}
	s.goWork(func() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		if d := s.Demo(); d != nil && d.Device(port) != nil {
			baud = 0 // a virtual cable takes any rate; its pace is its own
		}
		pr, err := app.ProbePort(ctx, port, baud, order)
		if err != nil {
			pr = &app.Probe{Error: err.Error()}
		}
		s.mu.Lock()
		delete(s.inFlight, port) // the port is closed again: an update may open it
		s.mu.Unlock()
		s.do(func() {
			s.mu.Lock()
			if s.Row(port) != nil {
				s.probed[port] = pr
			}
			s.mu.Unlock()
			s.setRow(port, func(r *DeviceRow) { r.Probe, r.Probing = pr, false })
			s.refit()
		})
	})
}

// waitProbe waits until no probe has port open (or ctx ends).
func (s *State) waitProbe(ctx context.Context, port string) {
	for {
		s.mu.Lock()
		busy := s.inFlight[port]
		s.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probeUSB asks a USB DFU device which state it is in (GETSTATE, and GETSTATUS where it
// starts nothing: the recovery probe, which changes nothing on the device).
func (s *State) probeUSB(key, spec string) {
	s.goWork(func() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		rec, err := app.ProbeRecoveryUSB(ctx, spec, nil)
		pr := &app.Probe{}
		switch {
		case err != nil:
			pr.Error = err.Error()
			rec = nil
		case !rec.Answered():
			pr.Error = rec.Text
			rec = nil
		default:
			pr.Protocol, pr.Identity = "dfu", rec.Identity
		}
		s.do(func() {
			s.mu.Lock()
			delete(s.inFlight, key)
			if s.Row(key) != nil {
				s.probed[key], s.usbState[key] = pr, rec
			}
			s.mu.Unlock()
			s.setRow(key, func(r *DeviceRow) { r.Probe, r.USBState, r.Probing = pr, rec, false })
		})
	})
}

// setRow changes one row and publishes the list.
func (s *State) setRow(port string, f func(*DeviceRow)) {
	rows := s.Rows()
	out := make([]*DeviceRow, len(rows))
	for i, r := range rows {
		c := *r
		if c.Port.Path == port {
			f(&c)
		}
		out[i] = &c
	}
	s.setRows(out)
}

// refit checks every identified device against the open bundle.
func (s *State) refit() {
	v := s.Verified()
	rows := s.Rows()
	out := make([]*DeviceRow, len(rows))
	for i, r := range rows {
		c := *r
		c.Fit = nil
		switch {
		case v != nil && c.USB != nil:
			// A DFU device is fitted by its USB ids and memory layout, without a request.
			f := app.CheckFitUSB(v, *c.USB)
			c.Fit = &f
		case v != nil && c.Probe != nil && c.Probe.Identity != nil:
			f := app.CheckFitAs(v, c.Probe.Identity, c.Port.Path, s.HardwareOf(c.Port.Path))
			c.Fit = &f
		}
		out[i] = &c
	}
	s.setRows(out)
}

// NeedsHardware says whether the device on the row answered without saying which
// hardware it is, so that a person must pick it from the board's label.
func (r *DeviceRow) NeedsHardware() bool {
	return r.USB == nil && r.Probe != nil && r.Probe.Identity != nil && r.Probe.Protocol != "" && r.Probe.Identity.HardwareID == ""
}

// SetHardware takes the hardware id a person read off the label of the device on port
// ("" forgets it) and checks the device against the open bundle again.
func (s *State) SetHardware(port, hardware string) {
	s.mu.Lock()
	if hardware == "" {
		delete(s.hardware, port)
	} else {
		s.hardware[port] = hardware
	}
	s.mu.Unlock()
	s.refit()
}

// HardwareOf is the hardware id picked for port ("" when none was).
func (s *State) HardwareOf(port string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hardware[port]
}

// Toggle picks or unpicks a port for the next update.
func (s *State) Toggle(port string, on bool) {
	sel, _ := s.Selected.Get()
	has := slices.Contains(sel, port)
	switch {
	case on && !has:
		s.Selected.Set(append(slices.Clone(sel), port))
	case !on && has:
		s.Selected.Set(slices.DeleteFunc(slices.Clone(sel), func(p string) bool { return p == port }))
	}
}

// Picked are the ports picked for an update.
func (s *State) Picked() []string {
	sel, _ := s.Selected.Get()
	return sel
}

// --- updates ----------------------------------------------------------------------------

func (s *State) batch() *Batch {
	v, _ := s.Jobs.Get()
	b, _ := v.(*Batch)
	return b
}

// Batch is the current update: one Job per device.
func (s *State) Batch() *Batch { return s.batch() }

// ErrNoBundle and its kin say why an update cannot start.
var (
	ErrNoBundle  = errors.New("open a trusted bundle first")
	ErrNoDevices = errors.New("pick at least one device")
	ErrRunning   = errors.New("an update is under way")
)

// Update starts updating the devices on ports, in parallel, one session per port.
func (s *State) Update(ports []string) (*Batch, error) {
	v := s.Verified()
	if v == nil {
		return nil, ErrNoBundle
	}
	if len(ports) == 0 {
		return nil, ErrNoDevices
	}
	if b := s.batch(); b != nil && b.Running() {
		return nil, ErrRunning
	}
	b := newBatch(s, v, ports)
	s.Jobs.Set(b)
	b.start()
	return b, nil
}

func (s *State) hold(port string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.busy[port] = true
	} else {
		delete(s.busy, port)
		delete(s.probed, port) // what it runs changed: ask again
	}
}

// SaveSettings keeps the settings and applies what changed.
func (s *State) SaveSettings(set app.Settings) error {
	s.Settings = set
	s.Mode.Set(set.Mode)
	return app.SaveSettings(s.home, set)
}

// ReopenSession reads the trust store again (after a root was pinned or removed) and
// verifies the open bundle again against it.
func (s *State) ReopenSession() error {
	if s.opt.Demo != nil {
		return nil
	}
	sess, err := app.OpenSession(false)
	if err != nil {
		return err
	}
	s.Session = sess
	n, _ := s.TrustRev.Get()
	s.TrustRev.Set(n + 1)
	if b := s.bundle(); b != nil && b.Path != "" {
		s.OpenBundle(b.Path)
	}
	return nil
}

// Home is where fieldflash keeps its state.
func (s *State) Home() string { return s.home }
