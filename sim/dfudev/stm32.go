package dfudev

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
)

// The STM32F407 system bootloader in DFU mode (AN3156, AN2606), with the timing of ST's
// STM32Cube DFU class where AN3156 leaves it open.
const (
	stmVID  = 0x0483
	stmPID  = 0xdf11
	stmXfer = 2048
	// usbd_dfu_flash.c FLASH_ERASE_TIME and FLASH_PROGRAM_TIME: the bwPollTimeout of every
	// GETSTATUS that starts an erase or a write.
	stmPollTimeout = 50 * time.Millisecond
	// STM32F407 datasheet, flash characteristics (x32 parallelism, typical).
	stmErase16K  = 250 * time.Millisecond
	stmErase64K  = 550 * time.Millisecond
	stmErase128K = 1000 * time.Millisecond
	stmWordWrite = 16 * time.Microsecond
)

// STM32Layouts are the alternate settings' names: internal flash, option bytes, OTP.
var STM32Layouts = []string{
	"@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg",
	"@Option Bytes  /0x1FFFC000/01*016 e",
	"@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
}

// DfuSe commands of AN3156.
var stmCommands = []byte{0x00, 0x21, 0x41, 0x92}

type stm32 struct {
	mem     *nor
	layouts []*dfu.Layout
	pointer uint32
	// the block waiting for GETSTATUS (dfuDNLOAD-SYNC)
	pending   []byte
	pendingNr uint16
	manifest  bool
	left      bool // jumped to the application: off the bus until EnterBootloader
}

func newSTM32(d *Device, path string) (*stm32, error) {
	s := &stm32{}
	var regions []region
	for _, name := range STM32Layouts {
		l, err := dfu.ParseLayout(name)
		if err != nil {
			return nil, err
		}
		s.layouts = append(s.layouts, l)
		start, end := l.Sectors[0].Start, l.Sectors[len(l.Sectors)-1].End()
		regions = append(regions, region{start: start, size: uint32(end - uint64(start))})
	}
	m, err := openNOR(path, regions)
	if err != nil {
		return nil, err
	}
	s.mem = m
	s.pointer = 0x08000000
	d.state = dfu.StateIdle
	return s, nil
}

func (s *stm32) close() error { return s.mem.close() }

func (s *stm32) descriptors() Descriptors { return Descriptors{} }

func (d *Device) stm32Descriptors(s *stm32) Descriptors {
	serial := d.opt.Serial
	if serial == "" {
		serial = "325A36713137" // the form of the ROM's serial: from the unique device id
	}
	return Descriptors{
		VendorID: stmVID, ProductID: stmPID, BcdDevice: 0x2200,
		Manufacturer: "STMicroelectronics", Product: "STM32  BOOTLOADER", Serial: serial,
		Protocol: dfu.ProtocolDFUMode, AltNames: STM32Layouts,
		Functional: dfu.Functional{Attributes: dfu.AttrCanDnload | dfu.AttrCanUpload | dfu.AttrWillDetach, DetachTimeout: 255 * time.Millisecond, TransferSize: stmXfer, Version: dfu.VersionDfuSe},
	}
}

// Memory reads the device's memory at addr (for tests and the lab).
func (d *Device) Memory(addr uint32, n int) ([]byte, error) {
	s, ok := d.impl.(*stm32)
	if !ok {
		return nil, fmt.Errorf("dfudev: %s has no flat memory", d.opt.Profile)
	}
	b := make([]byte, n)
	if !s.mem.read(addr, b) {
		return nil, fmt.Errorf("dfudev: 0x%08x+%d is outside the device's memory", addr, n)
	}
	return b, nil
}

// EnterBootloader is a power cycle with BOOT0 held: the device comes back in its DFU
// bootloader (after leave, or to start over).
func (d *Device) EnterBootloader() {
	d.mu.Lock()
	s, ok := d.impl.(*stm32)
	if ok {
		s.left, s.manifest, s.pending = false, false, nil
		d.state, d.status, d.alt = dfu.StateIdle, dfu.StatusOK, 0
	}
	bus := d.bus
	d.mu.Unlock()
	if ok && bus != nil {
		bus.Attach() // without the lock: the transport asks for the descriptors
	}
}

// Left says whether an STM32 twin jumped to its application (and left the bus).
func (d *Device) Left() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.impl.(*stm32)
	return ok && s.left
}

func (s *stm32) setAlt(d *Device, alt int) error {
	if alt < 0 || alt >= len(s.layouts) {
		return ErrStall
	}
	d.alt = alt
	return nil
}

func (s *stm32) busReset(d *Device) {
	if d.state == dfu.StateManifestWaitReset {
		s.leave(d)
	}
}

func (s *stm32) eraseTime(size uint32) time.Duration {
	switch {
	case size <= 16*1024:
		return stmErase16K
	case size <= 64*1024:
		return stmErase64K
	}
	return stmErase128K
}

func (s *stm32) setup(d *Device, r Setup, data []byte) ([]byte, func(), error) {
	if s.left {
		return nil, nil, ErrGone
	}
	if r.In() {
		switch r.Request {
		case dfu.ReqGetStatus:
			return s.getStatus(d)
		case dfu.ReqGetState:
			return []byte{byte(d.state)}, nil, nil
		case dfu.ReqUpload:
			return s.upload(d, r)
		}
		return nil, nil, ErrStall
	}
	switch r.Request {
	case dfu.ReqDnload:
		switch d.state {
		case dfu.StateIdle, dfu.StateDnloadIdle:
		default:
			return nil, nil, ErrStall
		}
		if len(data) == 0 {
			d.state = dfu.StateManifestSync
			s.manifest = true
			return nil, nil, nil
		}
		s.pending, s.pendingNr = append([]byte(nil), data...), r.Value
		d.state = dfu.StateDnloadSync
		return nil, nil, nil
	case dfu.ReqAbort:
		switch d.state {
		case dfu.StateIdle, dfu.StateDnloadSync, dfu.StateDnloadIdle, dfu.StateManifestSync, dfu.StateUploadIdle:
			d.state, s.pending, s.manifest = dfu.StateIdle, nil, false
		}
		return nil, nil, nil
	case dfu.ReqClrStatus:
		d.stats.ClrStatus++
		if d.state == dfu.StateError {
			d.state, d.status = dfu.StateIdle, dfu.StatusOK
		} else {
			d.state, d.status = dfu.StateError, dfu.StatusErrUnknown
		}
		return nil, nil, nil
	case dfu.ReqDetach:
		d.stats.Detaches++
		return nil, func() { d.mu.Lock(); s.leave(d); d.mu.Unlock() }, nil
	}
	return nil, nil, ErrStall
}

// getStatus answers, and starts the pending work after the answer: the STM32Cube class
// erases or programs in its status-stage callback, holding the control pipe meanwhile.
func (s *stm32) getStatus(d *Device) ([]byte, func(), error) {
	switch {
	case d.state == dfu.StateDnloadSync && s.pending != nil:
		d.state = dfu.StateDnBusy
		reply := d.statusReply(stmPollTimeout)
		block, nr := s.pending, s.pendingNr
		s.pending = nil
		return reply, func() { s.work(d, nr, block) }, nil
	case d.state == dfu.StateDnloadSync:
		d.state = dfu.StateDnloadIdle
	case d.state == dfu.StateManifestSync && s.manifest:
		d.state = dfu.StateManifest
		reply := d.statusReply(stmPollTimeout)
		return reply, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			// Not manifestation tolerant: the device resets into the application.
			d.state = dfu.StateManifestWaitReset
			s.leave(d)
		}, nil
	}
	return d.statusReply(stmPollTimeout), nil, nil
}

// work does a DNLOAD's job: a command in block 0, data at the address pointer in blocks 2
// and up.
func (s *stm32) work(d *Device, nr uint16, b []byte) {
	fail := func(st dfu.Status) {
		d.mu.Lock()
		d.state, d.status = dfu.StateError, st
		d.mu.Unlock()
	}
	layout := s.layouts[d.alt]
	switch {
	case nr == 0 && len(b) == 5 && b[0] == 0x21:
		d.mu.Lock()
		s.pointer = binary.LittleEndian.Uint32(b[1:])
		d.state = dfu.StateDnloadIdle
		d.mu.Unlock()
	case nr == 0 && len(b) == 5 && b[0] == 0x41:
		addr := binary.LittleEndian.Uint32(b[1:])
		sec, ok := layout.Sector(addr)
		if !ok || sec.Type&dfu.Erasable == 0 {
			fail(dfu.StatusErrTarget)
			return
		}
		d.sleep(s.eraseTime(sec.Size))
		if err := s.mem.erase(sec.Start, sec.Size); err != nil {
			fail(dfu.StatusErrErase)
			return
		}
		d.mu.Lock()
		d.stats.Erases++
		d.state = dfu.StateDnloadIdle
		d.mu.Unlock()
	case nr == 0 && len(b) == 1 && b[0] == 0x41:
		// Mass erase.
		for _, sec := range layout.Sectors {
			if sec.Type&dfu.Erasable != 0 {
				d.sleep(s.eraseTime(sec.Size))
				s.mem.erase(sec.Start, sec.Size)
			}
		}
		d.mu.Lock()
		d.state = dfu.StateDnloadIdle
		d.mu.Unlock()
	case nr == 0 && len(b) == 1 && b[0] == 0x92:
		d.mu.Lock()
		d.state = dfu.StateDnloadIdle
		d.mu.Unlock()
	case nr == 0 || nr == 1:
		fail(dfu.StatusErrStalledPkt)
	default:
		addr := uint64(s.pointer) + uint64(nr-2)*stmXfer
		secs, err := layout.Covering(uint32(addr), uint32(len(b)))
		if addr+uint64(len(b)) > 1<<32 || err != nil {
			fail(dfu.StatusErrAddress)
			return
		}
		for _, sec := range secs {
			if sec.Type&dfu.Writable == 0 {
				fail(dfu.StatusErrTarget)
				return
			}
		}
		d.sleep(stmWordWrite * time.Duration((len(b)+3)/4))
		ok, err := s.mem.program(uint32(addr), b)
		switch {
		case err != nil:
			fail(dfu.StatusErrWrite)
			return
		case !ok:
			fail(dfu.StatusErrVerify)
			return
		}
		d.mu.Lock()
		d.stats.DataBlocks++
		d.stats.DataBytes += int64(len(b))
		d.state = dfu.StateDnloadIdle
		d.mu.Unlock()
	}
}

func (s *stm32) upload(d *Device, r Setup) ([]byte, func(), error) {
	if d.state != dfu.StateIdle && d.state != dfu.StateUploadIdle {
		return nil, nil, ErrStall
	}
	if r.Length == 0 {
		d.state = dfu.StateIdle
		return nil, nil, nil
	}
	switch {
	case r.Value == 0:
		d.state = dfu.StateIdle
		return append([]byte(nil), stmCommands...), nil, nil
	case r.Value == 1:
		return nil, nil, d.stall(dfu.StatusErrStalledPkt)
	}
	n := min(int(r.Length), stmXfer)
	addr := uint64(s.pointer) + uint64(r.Value-2)*stmXfer
	b := make([]byte, n)
	if addr+uint64(n) > 1<<32 || !s.mem.read(uint32(addr), b) {
		// A read past the memory ends short at its end.
		for n > 0 && (addr+uint64(n) > 1<<32 || !s.mem.read(uint32(addr), b[:n])) {
			n--
		}
		b = b[:n]
	}
	d.stats.Uploads++
	d.state = dfu.StateUploadIdle
	return b, nil, nil
}

// leave jumps to the application, which does not speak USB: the device leaves the bus.
func (s *stm32) leave(d *Device) {
	s.left = true
	if d.bus != nil {
		d.bus.Detach()
	}
}
