package usblab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/dfudev"
)

// ConfigFS is where the gadget configuration file system is mounted.
const ConfigFS = "/sys/kernel/config/usb_gadget"

// UDC is dummy_hcd's gadget side.
const UDC = "dummy_udc.0"

// writeFile writes s into a configfs or sysfs attribute.
func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("usblab: %s: %w", path, err)
	}
	return nil
}

// Gadget is one configfs gadget with one function.
type Gadget struct {
	Name string
	dir  string
}

// NewGadget makes configfs gadget name with the device descriptor's ids and strings and
// one configuration holding function (e.g. "ffs.dfu", "acm.usb0").
func NewGadget(name string, vid, pid, bcd uint16, manufacturer, product, serial, function string) (*Gadget, error) {
	g := &Gadget{Name: name, dir: filepath.Join(ConfigFS, name)}
	for _, d := range []string{g.dir, g.dir + "/strings/0x409", g.dir + "/configs/c.1/strings/0x409", g.dir + "/functions/" + function} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("usblab: %w", err)
		}
	}
	if err := g.SetIDs(vid, pid, bcd); err != nil {
		return nil, err
	}
	for f, v := range map[string]string{"strings/0x409/manufacturer": manufacturer, "strings/0x409/product": product,
		"strings/0x409/serialnumber": serial, "configs/c.1/strings/0x409/configuration": "fieldflash lab", "configs/c.1/MaxPower": "100"} {
		if err := writeFile(filepath.Join(g.dir, f), v); err != nil {
			return nil, err
		}
	}
	link := filepath.Join(g.dir, "configs/c.1", function)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join(g.dir, "functions", function), link); err != nil {
			return nil, fmt.Errorf("usblab: %w", err)
		}
	}
	return g, nil
}

// SetIDs sets idVendor, idProduct and bcdDevice (while unbound).
func (g *Gadget) SetIDs(vid, pid, bcd uint16) error {
	for f, v := range map[string]uint16{"idVendor": vid, "idProduct": pid, "bcdDevice": bcd} {
		if err := writeFile(filepath.Join(g.dir, f), fmt.Sprintf("0x%04x", v)); err != nil {
			return err
		}
	}
	return nil
}

// Bind plugs the gadget into the UDC; Unbind pulls it.
func (g *Gadget) Bind() error   { return writeFile(filepath.Join(g.dir, "UDC"), UDC) }
func (g *Gadget) Unbind() error { return writeFile(filepath.Join(g.dir, "UDC"), "\n") }

// FunctionFS constants (include/uapi/linux/usb/functionfs.h).
const (
	ffsDescMagicV2  = 3
	ffsStringsMagic = 2
	ffsHasFS        = 1
	ffsHasHS        = 2
	ffsEventSize    = 12
	ffsBind         = 0
	ffsUnbind       = 1
	ffsEnable       = 2
	ffsDisable      = 3
	ffsSetup        = 4
)

// ffsBlobs encodes a DFU interface for FunctionFS: one interface descriptor per
// alternate setting and the functional descriptor after the last, for full and high
// speed, and the alternate settings' names.
func ffsBlobs(desc dfudev.Descriptors) (descs, strs []byte) {
	var list []byte
	n := 0
	names := 0
	for alt, name := range desc.AltNames {
		idx := byte(0)
		if name != "" {
			names++
			idx = byte(names)
		}
		list = append(list, 9, 4, 0, byte(alt), 0, dfu.InterfaceClass, dfu.InterfaceSubClass, desc.Protocol, idx)
		n++
	}
	list = append(list, desc.Functional.Bytes()...)
	n++
	le := binary.LittleEndian
	descs = le.AppendUint32(nil, ffsDescMagicV2)
	descs = le.AppendUint32(descs, 0)
	descs = le.AppendUint32(descs, ffsHasFS|ffsHasHS)
	descs = le.AppendUint32(descs, uint32(n))
	descs = le.AppendUint32(descs, uint32(n))
	descs = append(descs, list...)
	descs = append(descs, list...)
	le.PutUint32(descs[4:], uint32(len(descs)))

	strs = le.AppendUint32(nil, ffsStringsMagic)
	strs = le.AppendUint32(strs, 0)
	strs = le.AppendUint32(strs, uint32(names))
	if names > 0 {
		strs = le.AppendUint32(strs, 1)
		strs = le.AppendUint16(strs, 0x0409)
		for _, name := range desc.AltNames {
			if name != "" {
				strs = append(append(strs, name...), 0)
			}
		}
	} else {
		strs = le.AppendUint32(strs, 0)
	}
	le.PutUint32(strs[4:], uint32(len(strs)))
	return descs, strs
}

// DFUGadget serves a dfudev.Device through FunctionFS on dummy_hcd. Each mode of the
// device (run-time, DFU) is a gadget of its own with its own FunctionFS instance, both
// set up at the start; the device's detach and attach unbind one and bind the other to
// the one UDC, as a device re-enumerates on the same port.
//
// FunctionFS does not tell user space which alternate setting the host selected (only
// that one was: FUNCTIONFS_ENABLE). The gadget reads it from the host side's sysfs in the
// same machine (bAlternateSetting of the interface), which a real device learns from the
// SET_INTERFACE request itself.
type DFUGadget struct {
	dev *dfudev.Device

	mu      sync.Mutex
	modes   map[uint8]*ffsMode // by bInterfaceProtocol
	bound   *ffsMode
	pulled  bool
	altSeen bool // an ENABLE since the last alternate setting was read
	closing bool
	serving sync.WaitGroup
	Log     func(format string, args ...any)
	Trace   func(string) // every request and answer, when set
}

type ffsMode struct {
	g   *Gadget
	ep0 *os.File
	fd  int // ep0 in blocking mode: FunctionFS takes zero-length reads and writes as the
	// status stage and the stall, which os.File would skip
}

// read and write are one ep0 transfer each: the data or status stage of the request
// being answered (or the stall). They are not retried on EINTR: FunctionFS dequeues the
// stage's request when a signal interrupts its wait (__ffs_ep0_queue_wait), and a second
// one would take only what is still to come of the data (a DNLOAD block cut short), or
// send an IN answer from its start again after part of it went out (an UPLOAD block with
// bytes twice). serve runs on a thread that blocks signals, so this does not happen.
func (m *ffsMode) read(b []byte) (int, error) { return syscall.Read(m.fd, b) }

func (m *ffsMode) write(b []byte) (int, error) { return syscall.Write(m.fd, b) }

// readEvents reads FunctionFS events; an interrupted wait for events has taken none, so it
// is asked again.
func (m *ffsMode) readEvents(b []byte) (int, error) {
	for {
		n, err := syscall.Read(m.fd, b)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// blockSignals locks the calling goroutine to its thread and blocks the asynchronous
// signals there, so none interrupts an ep0 transfer: the Go runtime's preemption signal
// (SIGURG, sent to a thread that has just entered a system call as well) and SIGCHLD of
// the lab's dfu-util runs among them. The faults a Go program turns into panics stay
// deliverable. The thread ends with the goroutine (it is never unlocked).
func blockSignals() error {
	runtime.LockOSThread()
	var set unix.Sigset_t
	for sig := 1; sig < 65; sig++ {
		switch syscall.Signal(sig) {
		case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGSYS:
			continue
		}
		set.Val[(sig-1)/64] |= 1 << ((sig - 1) % 64)
	}
	return unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
}

// ServeDFU sets up both modes' gadgets for dev and plugs in the one dev is in.
func ServeDFU(dev *dfudev.Device, name string) (*DFUGadget, error) {
	dg := &DFUGadget{dev: dev, modes: map[uint8]*ffsMode{}, Log: func(string, ...any) {}}
	// The run-time gadget (where the device has that mode) and the DFU-mode one: a detach
	// goes from the first to the second, the reboot after a download back.
	var descs []dfudev.Descriptors
	if rt, ok := dev.RuntimeDescriptors(); ok {
		descs = append(descs, rt)
	}
	descs = append(descs, dev.DFUModeDescriptors())
	for i, d := range descs {
		fname := fmt.Sprintf("ffs.%s%d", name, i)
		g, err := NewGadget(fmt.Sprintf("%s%d", name, i), d.VendorID, d.ProductID, d.BcdDevice, d.Manufacturer, d.Product, d.Serial, fname)
		if err != nil {
			return nil, err
		}
		mnt := "/dev/ffs-" + fname[4:]
		os.MkdirAll(mnt, 0o755)
		if err := syscall.Mount(fname[4:], mnt, "functionfs", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("usblab: mounting functionfs %s: %w", fname, err)
		}
		ep0, err := os.OpenFile(mnt+"/ep0", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("usblab: %w", err)
		}
		db, sb := ffsBlobs(d)
		if _, err := ep0.Write(db); err != nil {
			return nil, fmt.Errorf("usblab: FunctionFS refused the descriptors of %s (%s): %w", fname, d.Product, err)
		}
		if _, err := ep0.Write(sb); err != nil {
			return nil, fmt.Errorf("usblab: FunctionFS refused the strings of %s: %w", fname, err)
		}
		m := &ffsMode{g: g, ep0: ep0, fd: int(ep0.Fd())}
		dg.modes[d.Protocol] = m
		dg.serving.Add(1)
		go func() {
			defer dg.serving.Done()
			if err := blockSignals(); err != nil {
				dg.Log("ep0 of %s: blocking signals: %v", fname, err)
			}
			dg.serve(m)
		}()
	}
	dev.SetBus(dg)
	dg.Attach()
	return dg, nil
}

// Detach takes the device off the bus (dfudev.Bus).
func (dg *DFUGadget) Detach() {
	dg.mu.Lock()
	defer dg.mu.Unlock()
	if dg.bound != nil {
		if err := dg.bound.g.Unbind(); err != nil {
			dg.Log("detach: %v", err)
		}
		dg.bound = nil
	}
}

// Attach plugs the gadget of the device's current mode in (dfudev.Bus).
func (dg *DFUGadget) Attach() {
	desc := dg.dev.Descriptors()
	dg.mu.Lock()
	defer dg.mu.Unlock()
	if dg.pulled {
		return
	}
	m := dg.modes[desc.Protocol]
	if m == nil || dg.bound == m {
		return
	}
	if dg.bound != nil {
		dg.bound.g.Unbind()
	}
	m.g.SetIDs(desc.VendorID, desc.ProductID, desc.BcdDevice)
	if err := m.g.Bind(); err != nil {
		dg.Log("attach: %v", err)
		return
	}
	dg.bound = m
}

// Unplug pulls the cable (unbinds the UDC) until Replug.
func (dg *DFUGadget) Unplug() {
	dg.mu.Lock()
	dg.pulled = true
	dg.mu.Unlock()
	dg.Detach()
}

// Replug puts the cable back.
func (dg *DFUGadget) Replug() {
	dg.mu.Lock()
	dg.pulled = false
	dg.mu.Unlock()
	dg.Attach()
}

// Close unbinds everything. The ep0 files are closed only once their readers stopped:
// a number closed under a waiting poll would be reused by the next gadget's ep0, and the
// old reader would answer the new gadget's requests.
func (dg *DFUGadget) Close() {
	dg.Unplug()
	dg.mu.Lock()
	dg.closing = true
	dg.mu.Unlock()
	dg.serving.Wait()
	for _, m := range dg.modes {
		m.ep0.Close()
	}
}

func (dg *DFUGadget) stopping() bool {
	dg.mu.Lock()
	defer dg.mu.Unlock()
	return dg.closing
}

// hostAlt reads the alternate setting the host selected, from its sysfs: bAlternateSetting
// of the first interface of the device with ids vid:pid (the gadget bound now; a root hub
// never has them). The host updates it when its SET_INTERFACE is done, before the process
// that sent it asks anything else, so it is read at the first request after the ENABLE.
func hostAlt(vid, pid uint16) (int, bool) {
	devs, _ := filepath.Glob("/sys/bus/usb/devices/*-*")
	for _, d := range devs {
		if strings.Contains(filepath.Base(d), ":") {
			continue // an interface
		}
		var v, p uint16
		if !readHex(d+"/idVendor", &v) || !readHex(d+"/idProduct", &p) || v != vid || p != pid {
			continue
		}
		files, _ := filepath.Glob(d + "/" + filepath.Base(d) + ":*.0/bAlternateSetting")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var n int
			if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &n); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

func readHex(path string, v *uint16) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	_, err = fmt.Sscanf(strings.TrimSpace(string(b)), "%x", v)
	return err == nil
}

func (dg *DFUGadget) serve(m *ffsMode) {
	buf := make([]byte, 4*ffsEventSize)
	data := make([]byte, 4096)
	for {
		// Wait with poll, then read: a read of ep0 that waits for an event holds
		// FunctionFS's mutex all along, which a bind of the UDC (another gadget's, or this
		// one's after a detach) then waits for.
		if dg.stopping() {
			return
		}
		pfd := []unix.PollFd{{Fd: int32(m.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 200); err != nil && err != unix.EINTR {
			dg.Log("ep0 poll: %v", err)
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			if pfd[0].Revents&(unix.POLLNVAL) != 0 {
				return
			}
			continue
		}
		n, err := m.readEvents(buf)
		if err != nil {
			if errors.Is(err, syscall.EBADF) {
				return
			}
			// EL2HLT reports the stall we made; the others a bus reset or unbind under way.
			if errors.Is(err, syscall.EL2HLT) || errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EIDRM) || errors.Is(err, syscall.ESHUTDOWN) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EBUSY) {
				continue
			}
			dg.Log("ep0 read: %v", err)
			return
		}
		for off := 0; off+ffsEventSize <= n; off += ffsEventSize {
			ev := buf[off : off+ffsEventSize]
			switch ev[8] {
			case ffsEnable:
				dg.mu.Lock()
				dg.altSeen = true
				dg.mu.Unlock()
				if dg.Trace != nil {
					dg.Trace("event ENABLE")
				}
			case ffsSetup:
				le := binary.LittleEndian
				s := dfudev.Setup{RequestType: ev[0], Request: ev[1], Value: le.Uint16(ev[2:]), Index: le.Uint16(ev[4:]), Length: le.Uint16(ev[6:])}
				dg.setup(m, s, data)
			default:
				if dg.Trace != nil {
					dg.Trace(fmt.Sprintf("event %d", ev[8]))
				}
			}
		}
	}
}

// setup answers one class request. Stalling in FunctionFS is the wrong direction: a read
// for an IN request, a write for an OUT one.
func (dg *DFUGadget) setup(m *ffsMode, s dfudev.Setup, data []byte) {
	dg.mu.Lock()
	seen := dg.altSeen
	dg.altSeen = false
	dg.mu.Unlock()
	if seen {
		desc := dg.dev.Descriptors()
		if alt, ok := hostAlt(desc.VendorID, desc.ProductID); ok {
			err := dg.dev.SetAlt(alt)
			if dg.Trace != nil {
				dg.Trace(fmt.Sprintf("alt %d from sysfs: %v", alt, err))
			}
		}
	}
	stall := func() {
		if s.In() {
			m.read(data[:0])
		} else {
			m.write(nil)
		}
	}
	if dg.Trace != nil {
		dg.Trace(fmt.Sprintf("setup %02x %d value %d length %d state %s", s.RequestType, s.Request, s.Value, s.Length, dg.dev.State()))
		defer func() { dg.Trace(fmt.Sprintf("  done, state %s", dg.dev.State())) }()
	}
	if s.RequestType&0x60 != 0x20 { // not a class request
		stall()
		return
	}
	if err := dg.dev.Admit(s); err != nil {
		stall()
		return
	}
	var payload []byte
	if !s.In() {
		n := int(s.Length)
		if n > len(data) {
			stall()
			return
		}
		k, err := m.read(data[:n])
		if err != nil {
			dg.Log("ep0: the data stage of request %d (%d bytes) failed: %v", s.Request, n, err)
			return
		}
		payload = data[:k]
	}
	answered := false
	err := dg.dev.Setup(s, payload, func(reply []byte) error {
		answered = true
		if s.In() {
			if _, err := m.write(reply); err != nil {
				dg.Log("ep0: the answer to request %d (%d bytes) was not sent: %v", s.Request, len(reply), err)
				return err
			}
			return nil
		}
		if n := int(s.Length); n == 0 {
			_, err := m.read(data[:0]) // the status stage of a request without data
			return err
		}
		return nil // the data read above completed it
	})
	if err != nil && !answered {
		if !s.In() && s.Length > 0 {
			return // the data stage is done; the device's state says the rest
		}
		stall()
	}
}
