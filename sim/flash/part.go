package flash

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Part is the timing of a flash part and the UART beside it: how long the device is busy
// erasing and programming (its CPU stalled by the flash controller), how long a reset
// takes, and whether bytes that arrive while it is busy are lost. The zero Part takes no
// time at all (PartNone), as the virtual devices always did.
//
// The figures are datasheet maxima or typical values, named on each part; they make the
// simulator's timing honest, not cycle-exact.
type Part struct {
	Name    string
	Summary string
	// EraseUnit is the smallest erasable block in bytes (a page or a sector) and EraseTime
	// the time one takes.
	EraseUnit int64
	EraseTime time.Duration
	// WordSize bytes are programmed in WordTime.
	WordSize   int64
	WordTime   time.Duration
	WriteAlign int // flash write block size: what MCUboot's flash_area_align returns
	// Boot is the time from reset until the application (or serial recovery) answers:
	// MCUboot's image validation (SHA-256 and signature) plus start-up. A swap adds its
	// own erase and program time on top.
	Boot time.Duration
	// DropsWhileBusy: the UART receiver keeps only RxFIFO bytes while the CPU is stalled
	// by a flash operation and loses the rest (an interrupt-driven UART without hardware
	// flow control).
	DropsWhileBusy bool
	RxFIFO         int
}

// The parts the simulator knows.
var (
	// PartNone takes no time: the virtual devices as they were, for fast tests.
	PartNone = Part{Name: "none", Summary: "no flash time, no reset time, no lost bytes"}
	// PartNRF52840: nRF52840 Product Specification v1.7, section 4.3.4 "NVMC electrical
	// specification": tERASEPAGE 85 ms (4 KiB page), tWRITE 41 us per 32-bit word (both
	// maxima); the CPU halts while the NVMC writes or erases. Zephyr's nrf52840 flash
	// controller has write-block-size 4. Its UARTE in Zephyr's interrupt-driven mode
	// (no HWFC on the DK's VCOM by default) loses what arrives while the CPU is halted
	// beyond the few bytes its RX FIFO holds.
	PartNRF52840 = Part{Name: "nrf52840", Summary: "Nordic nRF52840: 4 KiB pages, 85 ms erase, 41 us per word; UART loses bytes while flash is busy",
		EraseUnit: 4096, EraseTime: 85 * time.Millisecond, WordSize: 4, WordTime: 41 * time.Microsecond,
		WriteAlign: 4, Boot: 300 * time.Millisecond, DropsWhileBusy: true, RxFIFO: 6}
	// PartSTM32F4: STM32F405/407 datasheet (DS8626) table "Flash memory programming",
	// x32 parallelism, typical: 16 us per word, 1 s per 128 KiB sector (the size of the
	// sectors MCUboot's slots sit in on these boards); Zephyr's stm32f4 flash controller
	// has write-block-size 1. The USART has a one-byte receive register, so an
	// interrupt-driven receiver overruns while a flash operation stalls the bus.
	PartSTM32F4 = Part{Name: "stm32f4", Summary: "ST STM32F4: 128 KiB sectors, 1 s erase, 16 us per word; UART overruns while flash is busy",
		EraseUnit: 128 << 10, EraseTime: time.Second, WordSize: 4, WordTime: 16 * time.Microsecond,
		WriteAlign: 1, Boot: 250 * time.Millisecond, DropsWhileBusy: true, RxFIFO: 2}
)

// Parts lists every part by name.
func Parts() []Part { return []Part{PartNone, PartNRF52840, PartSTM32F4} }

// LookupPart finds a part by name.
func LookupPart(name string) (Part, error) {
	var names []string
	for _, p := range Parts() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return Part{}, fmt.Errorf("flash part %q: the simulator knows %s", name, strings.Join(names, ", "))
}

// Timed says whether the part takes any time.
func (p Part) Timed() bool { return p.EraseTime > 0 || p.WordTime > 0 || p.Boot > 0 }

// EraseDuration is the time to erase n bytes from the start of a region aligned to the
// erase unit (whole units: a partial unit is erased whole).
func (p Part) EraseDuration(n int64) time.Duration {
	if p.EraseUnit <= 0 || n <= 0 {
		return 0
	}
	units := (n + p.EraseUnit - 1) / p.EraseUnit
	return time.Duration(units) * p.EraseTime
}

// ProgressiveEraseDuration is the erase a progressive eraser does before it writes
// [from, to): the units the range reaches into that no earlier write (which ended at
// from) already made it erase. from 0 starts a fresh slot.
func (p Part) ProgressiveEraseDuration(from, to int64) time.Duration {
	if p.EraseUnit <= 0 || to <= from {
		return 0
	}
	done := (from + p.EraseUnit - 1) / p.EraseUnit
	need := (to + p.EraseUnit - 1) / p.EraseUnit
	return time.Duration(need-done) * p.EraseTime
}

// ProgramDuration is the time to program n bytes.
func (p Part) ProgramDuration(n int64) time.Duration {
	if p.WordSize <= 0 || n <= 0 {
		return 0
	}
	words := (n + p.WordSize - 1) / p.WordSize
	return time.Duration(words) * p.WordTime
}

// SwapDuration is the time MCUboot takes to swap an image of n bytes between the slots at
// boot: each erase unit the image covers is erased and programmed three times (primary to
// scratch or up one sector, secondary to primary, back to secondary), as both
// swap-using-scratch and swap-using-move do.
func (p Part) SwapDuration(n int64) time.Duration {
	if p.EraseUnit <= 0 || n <= 0 {
		return 0
	}
	units := (n + p.EraseUnit - 1) / p.EraseUnit
	return time.Duration(3*units) * (p.EraseTime + p.ProgramDuration(p.EraseUnit))
}
