package campaign

// The field: one virtual device at the end of one sim/link cable, as a technician meets
// it, and the app's side of it (a serial port opened by path, a driver, a plan, a journal).
// Nothing here stands in for the product: the engine, drivers, journal, cable, device
// models and flash model are the real ones. The harness only plays the technician (plug
// the cable back in, run the update again) and the physics (power goes, power comes back).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/sim/ymodemdev"
	"github.com/fieldflash/fieldflash/transports/serial"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

const (
	smpHardware    = "acme-gw-r2"
	ymodemHardware = "acme-x1"
)

// smpLayout has 32 KiB slots: room for the campaign's 8-24 KiB images and a short swap.
var smpLayout = flash.Layout{SectorSize: 4096, SlotSize: 0x8000, BootloaderSize: 0x1000}

// firmware is one release as an MCUboot image.
type firmware struct {
	image   []byte
	version string
	counter uint32
	hash    []byte   // MCUboot image hash (SHA256 TLV): what SMP devices report
	sha     [32]byte // SHA-256 of the file: the TUF target hash
}

func buildFirmware(r *rand.Rand, payloadSize int, version string, counter uint32) (*firmware, error) {
	payload := make([]byte, payloadSize)
	for i := 0; i < len(payload); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < len(payload); k++ {
			payload[i+k] = byte(v >> (8 * k))
		}
	}
	ver, err := mcuboot.ParseVersion(version)
	if err != nil {
		return nil, err
	}
	img, err := mcuboot.Build(payload, mcuboot.BuildOptions{Version: ver, SecurityCounter: &counter})
	if err != nil {
		return nil, err
	}
	m, err := mcuboot.Parse(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return nil, err
	}
	return &firmware{image: img, version: version, counter: counter, hash: m.ImageHash, sha: sha256.Sum256(img)}, nil
}

// writeBundle puts fw into a bundle-like file (between other bytes, at an offset, as the
// bundle container does) and returns what verify says of such a bundle. Verification
// itself is verify's business and tested there; the engine starts from its verdict.
func writeBundle(dir string, fw *firmware, protocol, hardware string) (*verify.Verified, error) {
	head := bytes.Repeat([]byte("metadata"), 64)
	path := filepath.Join(dir, "acme-"+fw.version+".fwb")
	if err := os.WriteFile(path, append(append(append([]byte(nil), head...), fw.image...), head...), 0o600); err != nil {
		return nil, err
	}
	counter := fw.counter
	return &verify.Verified{Bundle: path, Targets: []verify.Target{{
		Path: "firmware/app.bin", Length: int64(len(fw.image)), SHA256: hex.EncodeToString(fw.sha[:]), Offset: int64(len(head)),
		Meta: verify.TargetMeta{HardwareIDs: []string{hardware}, Version: fw.version, ReleaseCounter: uint64(fw.counter),
			Component: "app", Format: "mcuboot", Protocol: verify.ProtocolHints{Protocols: []string{protocol}}},
		Image: &verify.ImageInfo{Format: "mcuboot", Version: fw.version, SecurityCounter: &counter, ImageHash: hex.EncodeToString(fw.hash)},
	}}}, nil
}

// fieldConfig is what one run's field looks like.
type fieldConfig struct {
	protocol string // "smp" or "ymodem"
	dir      string
	old      *firmware // what the device runs before the update
	baud     int
	faults   []link.Fault
	seed     uint64
	// manualReplug: a pulled cable stays out until the app asks to reconnect (the
	// technician plugs it back in when the app says so).
	manualReplug bool
	// resetLosesPower: a reset of the YMODEM device is a power loss (it powers on from
	// its flash directory, sweeping whatever a transfer left).
	resetLosesPower bool
	// layout of the SMP device's flash; zero takes smpLayout.
	layout flash.Layout
	// board is the SMP device's firmware and flash part (nil: the simulator's original
	// device on a part that takes no time).
	board *campaignBoard
}

// campaignBoard is an SMP device profile on a flash part, as the campaign draws it.
type campaignBoard struct {
	profile *smpdev.Profile // nil: the simulator's original device
	part    flash.Part
}

func (b *campaignBoard) String() string {
	if b == nil {
		return "original/none"
	}
	name := "original"
	if b.profile != nil {
		name = b.profile.Name
	}
	return name + "/" + b.part.Name
}

// smpOptions are the device's options on this field. The campaign's line is unpaced, so
// the UART's receiver judges lost bytes at the rate the driver assumes for it (10 Mbaud):
// a chunk sent while the flash stalls the CPU is lost, one sent after its answer is not.
func (f *field) smpOptions() smpdev.Options {
	opt := smpdev.Options{HardwareID: smpHardware}
	if b := f.cfg.board; b != nil {
		opt.Profile, opt.Part = b.profile, b.part
		opt.Baud = f.cfg.baud
		if opt.Baud == 0 {
			opt.Baud = 10_000_000
		}
	}
	return opt
}

type field struct {
	cfg  fieldConfig
	link *link.Link

	plugMu sync.Mutex // the technician's hands: plugging the cable, cycling the power

	// SMP: the device and its flash; replaced on a power cycle.
	devMu     sync.Mutex
	flashPath string
	fl        *flash.Flash
	dev       *smpdev.Device
	cycles    int // power cycles done
	// the flash whose power is cut once it has written cutTarget bytes: from then on the
	// device is dark (it answers nothing), even before the harness notices the cut
	cutFlash  *flash.Flash
	cutTarget int64

	// YMODEM: the bootloader; its RAM state lives in one serving generation, which a reset
	// ends.
	ycfg      ymodemdev.Config
	genMu     sync.Mutex
	ydev      *ymodemdev.Device
	genCancel context.CancelFunc
	powerOn   bool // the next generation powers on from the flash directory

	ctx    context.Context
	cancel context.CancelFunc
	served chan struct{}
}

func newField(cfg fieldConfig) (*field, error) {
	f := &field{cfg: cfg, served: make(chan struct{})}
	switch cfg.protocol {
	case "smp":
		f.flashPath = filepath.Join(cfg.dir, "device.flash")
		layout := cfg.layout
		if layout.SlotSize == 0 {
			layout = smpLayout
		}
		fl, err := flash.Create(f.flashPath, layout, []byte("MCUboot"), flash.Options{NoSync: true})
		if err != nil {
			return nil, err
		}
		// Flashed in the factory: no boot magic, so permanent.
		if err := fl.Program(flash.Primary, 0, cfg.old.image); err != nil {
			fl.Close()
			return nil, err
		}
		dev, err := smpdev.New(fl, f.smpOptions())
		if err != nil {
			fl.Close()
			return nil, err
		}
		f.fl, f.dev = fl, dev
	case "ymodem":
		f.ycfg = ymodemdev.Config{Dir: filepath.Join(cfg.dir, "device"), HardwareID: ymodemHardware, MaxImage: 64 << 10,
			CInterval: 100 * time.Millisecond, Inspect: ymodemdev.MCUbootInspect}
		dev, err := ymodemdev.Open(f.ycfg)
		if err != nil {
			return nil, err
		}
		if err := dev.Install(cfg.old.image, ymodemdev.Info{Version: cfg.old.version, Counter: uint64(cfg.old.counter)}); err != nil {
			return nil, err
		}
		f.ydev = dev
	default:
		return nil, fmt.Errorf("protocol %q", cfg.protocol)
	}
	l, err := link.Open(link.Config{Baud: cfg.baud, Faults: cfg.faults, Seed: cfg.seed, OnReset: f.onReset,
		Symlink: filepath.Join(cfg.dir, "ttySIM0")})
	if err != nil {
		f.closeFlash()
		return nil, err
	}
	f.link = l
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if cfg.protocol == "smp" {
		go f.serveSMP()
	} else {
		go f.serveYMODEM()
	}
	return f, nil
}

func (f *field) serveSMP() {
	defer close(f.served)
	for {
		end, err := f.link.Accept(f.ctx)
		if err != nil {
			return
		}
		f.devMu.Lock()
		dev := f.dev
		f.devMu.Unlock()
		_ = smpdev.Serve(f.ctx, &powered{ReadWriter: end, f: f}, dev)
	}
}

var errPoweredOff = errors.New("the device rebooted")

// powered is the SMP device's end of the cable while it has power: once the flash has
// lost its power the device says nothing more, as a device without power does.
type powered struct {
	io.ReadWriter
	f *field
}

func (p *powered) Write(b []byte) (int, error) {
	if p.f.dark() {
		return 0, errPoweredOff
	}
	return p.ReadWriter.Write(b)
}

func (f *field) dark() bool {
	f.devMu.Lock()
	defer f.devMu.Unlock()
	return f.cutFlash != nil && f.cutFlash.Written() >= f.cutTarget
}

// pump reads one connection's device end for all serving generations, so a generation
// that a reset ends does not leave a reader behind that steals the next one's bytes.
type pump struct {
	ch   chan []byte
	dead chan struct{}
	err  error
	stop chan struct{}
}

func newPump(end io.Reader, stop chan struct{}) *pump {
	p := &pump{ch: make(chan []byte), dead: make(chan struct{}), stop: stop}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := end.Read(buf)
			if n > 0 {
				select {
				case p.ch <- bytes.Clone(buf[:n]):
				case <-stop:
					return
				}
			}
			if err != nil {
				p.err = err
				close(p.dead)
				return
			}
		}
	}()
	return p
}

func (p *pump) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// session is the device end as one serving generation sees it: dead once it rebooted.
type session struct {
	p       *pump
	w       io.Writer
	ctx     context.Context
	pending []byte
}

func (s *session) Read(b []byte) (int, error) {
	if s.ctx.Err() != nil {
		return 0, errPoweredOff
	}
	if len(s.pending) == 0 {
		select {
		case c := <-s.p.ch:
			s.pending = c
		case <-s.p.dead:
			return 0, s.p.err
		case <-s.ctx.Done():
			return 0, errPoweredOff
		}
	}
	n := copy(b, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *session) Write(b []byte) (int, error) {
	if s.ctx.Err() != nil {
		return 0, errPoweredOff
	}
	return s.w.Write(b)
}

func (f *field) serveYMODEM() {
	defer close(f.served)
	stop := make(chan struct{})
	defer close(stop)
	for {
		end, err := f.link.Accept(f.ctx)
		if err != nil {
			return
		}
		p := newPump(end, stop)
		for {
			gctx, gcancel := context.WithCancel(f.ctx)
			f.genMu.Lock()
			f.genCancel = gcancel
			if f.powerOn {
				f.powerOn = false
				d, err := ymodemdev.Open(f.ycfg)
				if err != nil {
					f.genMu.Unlock()
					gcancel()
					return // the final check reports a device that does not power on
				}
				f.ydev = d
			}
			dev := f.ydev
			f.genMu.Unlock()
			_ = dev.Serve(gctx, &session{p: p, w: end, ctx: gctx})
			rebooted := gctx.Err() != nil
			gcancel()
			if f.ctx.Err() != nil {
				return
			}
			if !rebooted {
				// The device end failed: the cable is gone. Drop what it still holds, so
				// the pump sees the end of it, and wait for the cable to come back.
				for !p.isDead() {
					select {
					case <-p.ch:
					case <-p.dead:
					case <-f.ctx.Done():
						return
					}
				}
			}
			if p.isDead() {
				break
			}
		}
	}
}

// onReset runs on the link's goroutine when a reset fault strikes.
func (f *field) onReset() {
	if f.cfg.protocol == "smp" {
		f.devMu.Lock()
		dev := f.dev
		f.devMu.Unlock()
		_, _ = dev.Reboot() // a reboot into a flash whose power was cut fails; the power cycle follows
		return
	}
	f.genMu.Lock()
	defer f.genMu.Unlock()
	if f.cfg.resetLosesPower {
		f.powerOn = true
	}
	if f.genCancel != nil {
		f.genCancel()
	}
}

// powerCycleSMP is a power loss of a USB-powered device: the cable goes (USB with it),
// the flash keeps what the cut left, and at power-on MCUboot boots from it.
func (f *field) powerCycleSMP() error {
	f.plugMu.Lock()
	defer f.plugMu.Unlock()
	f.link.Disconnect()
	f.devMu.Lock()
	f.fl.Close()
	fl, err := flash.Open(f.flashPath, flash.Options{NoSync: true})
	if err != nil {
		f.devMu.Unlock()
		return err
	}
	dev, err := smpdev.New(fl, f.smpOptions())
	if err != nil {
		fl.Close()
		f.devMu.Unlock()
		return fmt.Errorf("power-on after a power loss: %w", err)
	}
	f.fl, f.dev = fl, dev
	f.cutFlash = nil
	f.cycles++
	f.devMu.Unlock()
	return f.link.Reconnect()
}

// cutPowerAt cuts the SMP device's power after n more bytes of flash writes, and powers it
// back on as soon as the cut struck. It returns a function that stops watching and says
// whether the cut struck.
func (f *field) cutPowerAt(n int64) (stop func() bool) {
	f.devMu.Lock()
	target := f.fl.Written() + n
	f.fl.CutPowerAfter(n)
	f.cutFlash, f.cutTarget = f.fl, target
	f.devMu.Unlock()
	done := make(chan struct{})
	var struck bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			f.devMu.Lock()
			w := f.fl.Written()
			f.devMu.Unlock()
			if w >= target {
				struck = true
				_ = f.powerCycleSMP() // a device that does not power on is caught by the checks
				return
			}
		}
	}()
	var once sync.Once
	return func() bool {
		once.Do(func() { close(done); wg.Wait() })
		return struck
	}
}

// plugIn is the technician checking the cable before running the update again.
func (f *field) plugIn() error {
	f.plugMu.Lock()
	defer f.plugMu.Unlock()
	if f.link.Connected() {
		return nil
	}
	return f.link.Reconnect()
}

// connect opens the port by its stable path, as the app does, and starts the driver.
// It is also the plan's Reconnect.
func (f *field) connect(ctx context.Context) (flasher.Driver, error) {
	if f.cfg.manualReplug {
		if err := f.plugIn(); err != nil {
			return nil, err
		}
	}
	p, err := serial.Open(f.link.HostPath(), f.cfg.baud)
	if err != nil {
		return nil, err
	}
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		p.Close()
		return nil, err
	}
	if f.cfg.protocol == "smp" {
		// An unpaced line: wire time is negligible, so the driver's wait is its timeout.
		baud := f.cfg.baud
		if baud == 0 {
			baud = 10_000_000
		}
		return smp.New(p, smp.Options{Timeout: 300 * time.Millisecond, Retries: 3, Baud: baud}), nil
	}
	d := ymodem.New(p, ymodem.Options{
		Send:            ymodem.SendOptions{StartTimeout: 3 * time.Second, BlockTimeout: 1500 * time.Millisecond},
		IdentifyTimeout: 500 * time.Millisecond, VerdictTimeout: 2 * time.Second, ResetTimeout: time.Second,
	})
	return &ownedPort{Driver: d, port: p}, nil
}

// ownedPort closes the port with the driver: the ymodem driver leaves its port to its
// owner, and the owner here is the app.
type ownedPort struct {
	flasher.Driver
	port io.Closer
}

func (o *ownedPort) Close() error {
	err := o.Driver.Close()
	if cerr := o.port.Close(); err == nil {
		err = cerr
	}
	return err
}

// planOptions are the engine's options for the campaign: short timeouts for an unpaced
// line, so a fault costs milliseconds, not the seconds a real UART needs.
func (f *field) planOptions() flasher.PlanOptions {
	o := flasher.PlanOptions{
		Port:      f.link.HostPath(),
		Reconnect: f.connect,
		Retry:     flasher.RetryPolicy{Initial: 10 * time.Millisecond, Max: 150 * time.Millisecond, Tries: 8},
	}
	if f.cfg.protocol == "smp" {
		o.Device = smpHardware + "/SN0001"
		o.HardwareID = smpHardware // off the label: stock Zephyr does not say
		o.ProbeTimeout, o.StallTimeout, o.RequestTimeout = 4*time.Second, 2*time.Second, 2*time.Second
	} else {
		o.Device = ymodemHardware + "/SN0001"
		o.ProbeTimeout, o.StallTimeout, o.RequestTimeout = 4*time.Second, 4*time.Second, 3*time.Second
	}
	return o
}

// close stops the device and the cable. The flash stays on disk for the final check.
func (f *field) close() {
	f.cancel()
	f.link.Close()
	<-f.served
	f.closeFlash()
}

func (f *field) closeFlash() {
	f.devMu.Lock()
	defer f.devMu.Unlock()
	if f.fl != nil {
		f.fl.Close()
		f.fl = nil
	}
}

// quiet waits until the device has stopped writing its flash for a while, so a copy of
// it is a state the device could lose power in.
func (f *field) quiet() {
	if f.cfg.protocol != "smp" {
		time.Sleep(30 * time.Millisecond)
		return
	}
	last := int64(-1)
	for i := 0; i < 100; i++ {
		f.devMu.Lock()
		w := f.fl.Written()
		f.devMu.Unlock()
		if w == last {
			return
		}
		last = w
		time.Sleep(30 * time.Millisecond)
	}
}

// bootsNow copies the device's flash as it is and powers the copy on: it must boot the
// old image or the new one, twice in a row (a trial not yet confirmed reverts at the
// second boot, and what it reverts to must boot too). It returns what each boot ran.
func (f *field) bootsNow(scratch string, old, new *firmware) ([]string, error) {
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	if f.cfg.protocol == "smp" {
		for try := 0; ; try++ {
			f.devMu.Lock()
			before := f.fl.Written()
			raw, err := os.ReadFile(f.flashPath)
			after := f.fl.Written()
			f.devMu.Unlock()
			if err != nil {
				return nil, err
			}
			if before != after && try < 5 {
				time.Sleep(20 * time.Millisecond)
				continue // torn copy: the device wrote meanwhile
			}
			cp := filepath.Join(scratch, "device.flash")
			if err := os.WriteFile(cp, raw, 0o600); err != nil {
				return nil, err
			}
			return bootSMPFlash(cp, old, new)
		}
	}
	for try := 0; ; try++ {
		dir := filepath.Join(scratch, fmt.Sprint("device", try))
		got, err := copyYMODEMFlash(f.ycfg.Dir, dir)
		if err != nil && try < 5 {
			time.Sleep(20 * time.Millisecond)
			continue // a commit renamed files meanwhile
		}
		if err != nil {
			return nil, err
		}
		_ = got
		return bootYMODEMFlash(ymodemdev.Config{Dir: dir, HardwareID: ymodemHardware, MaxImage: 64 << 10, Inspect: ymodemdev.MCUbootInspect}, old, new)
	}
}

// bootSMPFlash powers on the flash file at path twice and says what ran.
func bootSMPFlash(path string, old, new *firmware) ([]string, error) {
	fl, err := flash.Open(path, flash.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	var ran []string
	for boot := 1; boot <= 2; boot++ {
		res, err := fl.Boot(false)
		if err != nil {
			return ran, fmt.Errorf("boot %d: %w", boot, err)
		}
		img := fl.Image(flash.Primary)
		if res.Mode != flash.ModeApplication || !img.Valid {
			return ran, fmt.Errorf("bricked: boot %d went to %s (refused %q, primary: %s)", boot, res.Mode, res.Refused, img.Problem)
		}
		switch {
		case bytes.Equal(img.Hash, new.hash):
			ran = append(ran, "new")
		case bytes.Equal(img.Hash, old.hash):
			ran = append(ran, "old")
		default:
			return ran, fmt.Errorf("boot %d runs an image that is neither the old nor the new one (hash %x)", boot, img.Hash)
		}
	}
	return ran, nil
}

// copyYMODEMFlash copies what a power-on reads (the state and the image it names).
func copyYMODEMFlash(from, to string) (ymodemdev.App, error) {
	var st ymodemdev.App
	raw, err := os.ReadFile(filepath.Join(from, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return st, err
	}
	if err := os.WriteFile(filepath.Join(to, "state.json"), raw, 0o600); err != nil {
		return st, err
	}
	if st.File != "" {
		img, err := os.ReadFile(filepath.Join(from, st.File))
		if err != nil {
			return st, err
		}
		if err := os.WriteFile(filepath.Join(to, st.File), img, 0o600); err != nil {
			return st, err
		}
	}
	return st, nil
}

func bootYMODEMFlash(cfg ymodemdev.Config, old, new *firmware) ([]string, error) {
	dev, err := ymodemdev.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("power-on: %w", err)
	}
	app, data, err := dev.Booted()
	if err != nil {
		return nil, fmt.Errorf("bricked: %w", err)
	}
	if _, err := ymodemdev.MCUbootInspect(bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, fmt.Errorf("bricked: the application %s does not check: %w", app.File, err)
	}
	sum := sha256.Sum256(data)
	switch sum {
	case new.sha:
		return []string{"new"}, nil
	case old.sha:
		return []string{"old"}, nil
	}
	return nil, fmt.Errorf("runs an image that is neither the old nor the new one (sha256 %x)", sum)
}
