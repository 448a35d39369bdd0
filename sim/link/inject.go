package link

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Injection records one fault as it struck, for the fault campaign's printout and for
// checking that a seed reproduces a run.
type Injection struct {
	Kind   Kind
	Dir    Direction
	Offset int64 // index of the first byte hit, in Dir's byte count
	Count  int64 // bytes dropped or corrupted
	Bit    int   // Corrupt: the bit flipped in the byte at Offset
	Random bool  // struck by a random fault rather than at a given offset
}

// Stats counts what the link carried and what it did to it.
type Stats struct {
	HostToDevice int64 // bytes the host wrote that entered the line
	DeviceToHost int64 // bytes the device wrote that entered the line
	Dropped      int64 // bytes lost by Drop faults
	Corrupted    int64 // bytes with a flipped bit
	Stalls       int64
	Disconnects  int64 // cable pulls, by fault or by Link.Disconnect
	Resets       int64 // device resets, by fault or by Link.ResetDevice
}

// maxLoggedInjections caps the injection log; Stats keeps counting past it.
const maxLoggedInjections = 10000

// randomFault is a random fault's own stream: the gap to its next strike is drawn from a
// geometric distribution, so the outcome depends only on the seed and the byte count,
// never on how the bytes were chunked or how fast they came.
type randomFault struct {
	f    Fault
	rng  *rand.Rand
	next int64
}

func (r *randomFault) advance(from int64) {
	u := r.rng.Float64()
	gap := int64(0)
	if r.f.Rate < 1 {
		g := math.Floor(math.Log1p(-u) / math.Log1p(-r.f.Rate))
		if g > float64(maxFaultOffset) {
			g = float64(maxFaultOffset)
		}
		gap = int64(g)
	}
	r.next = from + gap
}

// injector decides, byte by byte, which faults strike one direction of the link. It lives
// as long as the Link, so offsets keep counting across reconnects.
type injector struct {
	dir    Direction
	fixed  []Fault // sorted by Offset; each strikes once
	fi     int
	random []*randomFault
	bits   *rand.Rand // which bit a Corrupt flips

	pos         int64 // index of the next byte
	dropLeft    int64
	corruptLeft int64
	corruptRand bool // the corruption under way came from a random fault
}

func newInjector(dir Direction, faults []Fault, seed uint64) *injector {
	in := &injector{dir: dir, bits: rand.New(rand.NewPCG(seed, 0xb175^uint64(dir)))}
	for i, f := range faults {
		if f.Rate > 0 {
			if f.Dir != dir && f.Dir != BothWays {
				continue
			}
			r := &randomFault{f: f, rng: rand.New(rand.NewPCG(seed, uint64(i)<<8|uint64(dir)))}
			r.advance(0)
			in.random = append(in.random, r)
			continue
		}
		if f.Dir == dir {
			in.fixed = append(in.fixed, f)
		}
	}
	slices.SortStableFunc(in.fixed, func(a, b Fault) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	return in
}

// nextAt is the index of the next byte at which some fault strikes.
func (in *injector) nextAt() int64 {
	n := int64(math.MaxInt64)
	if in.fi < len(in.fixed) {
		n = in.fixed[in.fi].Offset
	}
	for _, r := range in.random {
		n = min(n, r.next)
	}
	return n
}

// strike is one fault striking at the current byte.
type strike struct {
	f      Fault
	random bool
}

// strikes returns the faults that strike the byte at in.pos, in spec order for those
// given by offset, then the random ones.
func (in *injector) strikes(dst []strike) []strike {
	for in.fi < len(in.fixed) && in.fixed[in.fi].Offset <= in.pos {
		dst = append(dst, strike{f: in.fixed[in.fi]})
		in.fi++
	}
	for _, r := range in.random {
		if r.next <= in.pos {
			dst = append(dst, strike{f: r.f, random: true})
			r.advance(in.pos + 1)
		}
	}
	return dst
}

// stall and replug durations are given by the fault; the helpers keep zero values sane.
func stallFor(f Fault) time.Duration {
	if f.Duration > 0 {
		return f.Duration
	}
	return DefaultStall
}
