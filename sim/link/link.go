// Package link is the cable between fieldflash and a virtual device: a pseudo-terminal
// on the host side, which fieldflash opens by path like any USB-serial adapter, and an
// io.ReadWriteCloser on the device side, which a device model from sim/ serves.
//
// In between it shapes the line as a field technician meets it: bytes take their time at
// the configured baud rate (8N1, so baud/10 bytes per second each way), and faults strike
// at chosen byte offsets or at random, reproducibly from a seed: lost bytes, flipped bits,
// stalls, a pulled cable (the pty disappears; Reconnect plugs a new one in at the same
// stable path) and device resets. Stats and Injections say what was done, for the fault
// campaign's printout. The fault spec grammar is in docs/simulator.md.
package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Config says how the line behaves.
type Config struct {
	// Baud paces both directions at Baud/10 bytes per second (8N1). 0 leaves the line
	// unpaced: bytes go as fast as the pty carries them.
	Baud int
	// Faults strike at byte offsets or at random; see ParseFaults.
	Faults []Fault
	// Seed makes random faults and flipped bits reproducible: the same seed and the
	// same bytes give the same injections at the same offsets.
	Seed uint64
	// OnReset reboots the device model when a Reset fault strikes or ResetDevice is
	// called. It runs on the link's own goroutine, after the bytes in flight are lost
	// and before any later byte is carried, so it must not wait for the link; it may
	// write a boot banner to the device end.
	OnReset func()
	// Symlink, if set, is a stable path (e.g. $FIELDFLASH_HOME/sim/ttySIM0) kept
	// pointing at the current pty, so a host can re-open the same path after a cable
	// pull, as it would a re-plugged adapter with a udev rule.
	Symlink string
}

// deviceBuffer is the device UART's receive and transmit buffer size.
const deviceBuffer = 4096

// ErrClosed is returned by Accept and Reconnect once the Link is closed.
var ErrClosed = errors.New("link closed")

// Link is one virtual cable. Its methods are safe for concurrent use.
type Link struct {
	cfg      Config
	h2d, d2h *injector

	plugMu sync.Mutex // serialises Reconnect and Close

	mu       sync.Mutex
	conn     *conn // nil while unplugged
	last     *conn // the newest connection, live or dead
	nextID   uint64
	accepted uint64
	changed  chan struct{} // closed and replaced whenever conn changes
	closed   bool
	replug   *time.Timer

	statsMu sync.Mutex
	stats   Stats
	log     []Injection
}

// conn is one plug-in of the cable: one pty and the device end that goes with it.
type conn struct {
	id      uint64
	master  *os.File
	slave   *os.File // held open so the pty lives while the host has it closed
	pts     string
	in, out *queue // device receive and transmit buffers
	dev     *deviceEnd
	done    chan struct{}
	wg      sync.WaitGroup
}

// Open plugs the cable in: it creates the pty and starts carrying bytes.
func Open(cfg Config) (*Link, error) {
	if cfg.Baud < 0 {
		return nil, fmt.Errorf("link: baud rate %d is negative; use 0 for an unpaced line", cfg.Baud)
	}
	for _, f := range cfg.Faults {
		if f.Kind < Drop || f.Kind > Reset || f.Dir < HostToDevice || f.Dir > BothWays || (f.Dir == BothWays && f.Rate == 0) {
			return nil, fmt.Errorf("link: fault %v: kind or direction out of range; build faults with ParseFaults", f)
		}
	}
	l := &Link{
		cfg:     cfg,
		h2d:     newInjector(HostToDevice, cfg.Faults, cfg.Seed),
		d2h:     newInjector(DeviceToHost, cfg.Faults, cfg.Seed),
		changed: make(chan struct{}),
	}
	if err := l.plug(); err != nil {
		return nil, err
	}
	return l, nil
}

// HostPath is the path the host opens: the Symlink if configured, otherwise the current
// pty (which changes on Reconnect).
func (l *Link) HostPath() string {
	if l.cfg.Symlink != "" {
		return l.cfg.Symlink
	}
	return l.PTYPath()
}

// PTYPath is the current (or, while unplugged, the last) pty, e.g. /dev/pts/3.
func (l *Link) PTYPath() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last.pts
}

// Connected reports whether the cable is plugged in.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil
}

// Device is the device end of the current connection: Read gives the bytes the host
// wrote, Write sends bytes to the host. After a cable pull it is the dead end of the
// last connection (Read drains, then io.EOF; Write fails) until Reconnect.
func (l *Link) Device() io.ReadWriteCloser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last.dev
}

// Accept returns the device end of each connection once, as a listener does: the first
// call returns the end plugged in by Open, later calls wait for Reconnect. A device
// model serves in a loop: Accept, serve until io.EOF, Accept again.
func (l *Link) Accept(ctx context.Context) (io.ReadWriteCloser, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		if l.conn != nil && l.conn.id > l.accepted {
			l.accepted = l.conn.id
			dev := l.conn.dev
			l.mu.Unlock()
			return dev, nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Disconnect pulls the cable: the host's open port fails (reads end, writes get EIO),
// the pty and the Symlink go away, and the device end reads io.EOF.
func (l *Link) Disconnect() {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		l.unplug(c, 0, true)
	}
}

// Reconnect plugs the cable back in: a new pty, the Symlink pointed at it, and a new
// device end for Accept. Plugged in already, it does nothing.
func (l *Link) Reconnect() error {
	l.plugMu.Lock()
	defer l.plugMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.conn != nil {
		l.mu.Unlock()
		return nil
	}
	if l.replug != nil {
		l.replug.Stop()
		l.replug = nil
	}
	old := l.last
	l.mu.Unlock()
	// The injectors belong to one pair of pumps at a time.
	old.wg.Wait()
	return l.plug()
}

// ResetDevice reboots the device as a Reset fault does.
func (l *Link) ResetDevice() {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		l.resetDevice(c)
	}
}

// Close unplugs the cable for good and removes the Symlink.
func (l *Link) Close() error {
	l.plugMu.Lock()
	defer l.plugMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	c := l.conn
	if l.replug != nil {
		l.replug.Stop()
	}
	l.mu.Unlock()
	if c != nil {
		l.unplug(c, 0, false)
	}
	l.mu.Lock()
	l.closed = true
	l.notifyLocked()
	last := l.last
	l.mu.Unlock()
	last.wg.Wait()
	return nil
}

// Stats returns the counters so far.
func (l *Link) Stats() Stats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats
}

// Injections returns the faults that struck so far, in order per direction (the first
// 10000).
func (l *Link) Injections() []Injection {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return append([]Injection(nil), l.log...)
}

func (l *Link) plug() error {
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("link: creating a pseudo-terminal: %v; virtual devices need /dev/ptmx (Linux, macOS, BSD)", err)
	}
	// The pty starts in cooked mode with echo: until the host opens it raw, the device's
	// bytes would be echoed back as if the host had sent them, and newlines rewritten.
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("link: setting %s raw: %v", slave.Name(), err)
	}
	if master, err = pollable(master); err != nil {
		slave.Close()
		return fmt.Errorf("link: pty master: %v", err)
	}
	l.mu.Lock()
	l.nextID++
	c := &conn{
		id:     l.nextID,
		master: master,
		slave:  slave,
		pts:    slave.Name(),
		in:     newQueue(deviceBuffer),
		out:    newQueue(deviceBuffer),
		done:   make(chan struct{}),
	}
	c.dev = &deviceEnd{c: c}
	l.mu.Unlock()
	if l.cfg.Symlink != "" {
		if err := pointSymlink(l.cfg.Symlink, c.pts); err != nil {
			master.Close()
			slave.Close()
			return fmt.Errorf("link: stable path %s: %v; pick a writable directory for it", l.cfg.Symlink, err)
		}
	}
	l.mu.Lock()
	l.conn, l.last = c, c
	l.notifyLocked()
	l.mu.Unlock()
	c.wg.Add(2)
	go l.pumpHostToDevice(c)
	go l.pumpDeviceToHost(c)
	return nil
}

// pointSymlink makes link point at target atomically, so a host never sees the path
// missing while it is being re-pointed.
func pointSymlink(link, target string) error {
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".new")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// unplug ends connection c: closing the pty master hangs up the host's side, and the pty
// node vanishes with it.
func (l *Link) unplug(c *conn, replugAfter time.Duration, count bool) {
	l.mu.Lock()
	if l.conn != c {
		l.mu.Unlock()
		return
	}
	l.conn = nil
	close(c.done)
	c.master.Close()
	c.slave.Close()
	c.in.close()
	c.out.close()
	if l.cfg.Symlink != "" {
		if t, err := os.Readlink(l.cfg.Symlink); err == nil && t == c.pts {
			os.Remove(l.cfg.Symlink)
		}
	}
	if replugAfter > 0 && !l.closed {
		l.replug = time.AfterFunc(replugAfter, func() { l.Reconnect() })
	}
	l.notifyLocked()
	l.mu.Unlock()
	if count {
		l.statsMu.Lock()
		l.stats.Disconnects++
		l.statsMu.Unlock()
	}
}

func (l *Link) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// resetDevice loses the bytes in the device's buffers and reboots the model.
func (l *Link) resetDevice(c *conn) {
	c.in.flush()
	c.out.flush()
	l.statsMu.Lock()
	l.stats.Resets++
	l.statsMu.Unlock()
	if l.cfg.OnReset != nil {
		l.cfg.OnReset()
	}
}

func (l *Link) record(in Injection) {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	switch in.Kind {
	case Drop:
		l.stats.Dropped += in.Count
	case Corrupt:
		l.stats.Corrupted += in.Count
	case Stall:
		l.stats.Stalls++
	}
	if len(l.log) < maxLoggedInjections {
		l.log = append(l.log, in)
	}
}

func (l *Link) carried(dir Direction, n int) {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	if dir == HostToDevice {
		l.stats.HostToDevice += int64(n)
	} else {
		l.stats.DeviceToHost += int64(n)
	}
}

// slowWrite is how long a write to the host may take before the line counts as held up
// by a host that does not read.
const slowWrite = 2 * time.Millisecond

func (l *Link) pumpHostToDevice(c *conn) {
	defer c.wg.Done()
	defer c.in.close()
	p := newPacer(l.cfg.Baud)
	buf := make([]byte, 4096)
	for {
		// Look before waiting: bytes already there mean the host keeps the line busy and the
		// schedule runs on; having to wait for them means the line went idle.
		n, ok, err := readNow(c.master, buf)
		waited := !ok
		if waited {
			n, err = c.master.Read(buf)
		}
		if ok && n == 0 && err == nil {
			err = io.EOF // read(2) gives 0 once the slave side hangs up for good
		}
		if n > 0 {
			if waited {
				p.idle(time.Now())
			}
			if !l.carry(c, l.h2d, p, buf[:n], c.in.currentEpoch()) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *Link) pumpDeviceToHost(c *conn) {
	defer c.wg.Done()
	p := newPacer(l.cfg.Baud)
	buf := make([]byte, 4096)
	for {
		n, epoch, err := c.out.readEpoch(buf, false)
		if n == 0 && err == nil {
			n, epoch, err = c.out.readEpoch(buf, true)
			p.idle(time.Now())
		}
		if n > 0 {
			if !l.carry(c, l.d2h, p, buf[:n], epoch) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// carry takes bytes through the faults and the pacer to the far side. It returns false
// once the connection is over.
//
// A device reset loses what the device had not yet read and what it had not yet sent.
// For the device's output that is the rest of the chunk in hand: the device wrote it
// before it rebooted. For the host's output only the slice on the wire is lost: the rest
// is still in the host's buffers and reaches the rebooted device.
func (l *Link) carry(c *conn, in *injector, p *pacer, data []byte, epoch uint64) bool {
	dir := in.dir
	q := c.in // whose flush makes bytes in flight stale
	if dir == DeviceToHost {
		q = c.out
	}
	start := in.pos
	defer func() { l.carried(dir, int(in.pos-start)) }()
	slice := p.sliceLen()
	out := make([]byte, 0, min(slice, len(data)))
	stale := false // d2h: a reset made the rest of this chunk history
	send := func() bool {
		if len(out) == 0 {
			return true
		}
		n := len(out)
		defer func() { out = out[:0] }()
		if !p.wait(n, c.done) {
			return false
		}
		if cur := q.currentEpoch(); cur != epoch {
			epoch = cur
			stale = dir == DeviceToHost
			return true
		}
		if dir == HostToDevice {
			_, waited, err := c.in.write(out)
			if waited {
				p.idle(time.Now())
			}
			return err == nil
		}
		t0 := time.Now()
		_, err := c.master.Write(out)
		if now := time.Now(); now.Sub(t0) > slowWrite {
			p.idle(now)
		}
		return err == nil
	}
	next := in.nextAt()
	var hits []strike
	for _, b := range data {
		if stale {
			return true
		}
		lost := false
		if in.pos >= next {
			hits = in.strikes(hits[:0])
			for _, h := range hits {
				f := h.f
				switch f.Kind {
				case Drop:
					in.dropLeft = max(in.dropLeft, f.Count, 1)
					l.record(Injection{Kind: Drop, Dir: dir, Offset: in.pos, Count: max(f.Count, 1), Random: h.random})
				case Corrupt:
					in.corruptLeft = max(in.corruptLeft, f.Count, 1)
					in.corruptRand = h.random
				case Stall:
					if !send() {
						return false
					}
					l.record(Injection{Kind: Stall, Dir: dir, Offset: in.pos, Random: h.random})
					if !sleepUntil(time.Now().Add(stallFor(f)), c.done) {
						return false
					}
					p.hold(time.Now())
				case Reset:
					if !send() {
						return false
					}
					l.record(Injection{Kind: Reset, Dir: dir, Offset: in.pos, Random: h.random})
					l.resetDevice(c)
					epoch = q.currentEpoch()
					p.hold(time.Now())
					lost = true
					if dir == DeviceToHost {
						in.pos++
						return true
					}
				case Disconnect:
					if !send() {
						return false
					}
					l.record(Injection{Kind: Disconnect, Dir: dir, Offset: in.pos, Random: h.random})
					in.pos++
					l.unplug(c, f.Duration, true)
					return false
				}
			}
			next = in.nextAt()
		}
		pos := in.pos
		in.pos++
		if in.dropLeft > 0 {
			in.dropLeft--
			continue
		}
		if lost {
			continue
		}
		if in.corruptLeft > 0 {
			in.corruptLeft--
			bit := in.bits.IntN(8)
			b ^= 1 << bit
			l.record(Injection{Kind: Corrupt, Dir: dir, Offset: pos, Count: 1, Bit: bit, Random: in.corruptRand})
		}
		out = append(out, b)
		if len(out) >= slice && !send() {
			return false
		}
	}
	return send()
}

// deviceEnd is what the device model holds: its UART.
type deviceEnd struct{ c *conn }

func (d *deviceEnd) Read(p []byte) (int, error)  { return d.c.in.Read(p) }
func (d *deviceEnd) Write(p []byte) (int, error) { return d.c.out.Write(p) }

// Close is the device going quiet: what the host sends is swallowed, what the device had
// queued still goes out.
func (d *deviceEnd) Close() error {
	d.c.in.hangUpReader()
	d.c.out.close()
	return nil
}
