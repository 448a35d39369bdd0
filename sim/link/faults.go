package link

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is what a fault does to the line.
type Kind int

const (
	Drop       Kind = iota + 1 // lose bytes, as a UART overrun does
	Corrupt                    // flip one bit in each affected byte, as line noise does
	Stall                      // hold the data back for a while, as a busy USB hub does
	Disconnect                 // pull the cable: the pty goes away
	Reset                      // the device reboots; bytes in flight are lost
)

var kindNames = map[Kind]string{Drop: "drop", Corrupt: "corrupt", Stall: "stall", Disconnect: "disconnect", Reset: "reset"}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func parseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

// Direction says which way the bytes a fault hits travel.
type Direction int

const (
	HostToDevice Direction = iota + 1 // bytes fieldflash writes: requests, image data
	DeviceToHost                      // bytes the device writes: responses, boot banners
	BothWays                          // random faults only: either direction
)

func (d Direction) String() string {
	switch d {
	case HostToDevice:
		return "h2d"
	case DeviceToHost:
		return "d2h"
	case BothWays:
		return "both"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Fault is one thing that goes wrong on the line, either at a byte offset or at random.
type Fault struct {
	Kind Kind
	// Dir is the direction whose byte count Offset refers to, or the direction(s) a
	// random fault strikes.
	Dir Direction
	// Offset is the 0-based index of the byte, counted from the link's opening across
	// reconnects, at which the fault strikes. Ignored when Rate > 0.
	Offset int64
	// Rate > 0 makes the fault random: each byte is hit with probability Rate.
	Rate float64
	// Count is how many bytes a Drop or Corrupt affects (at least 1).
	Count int64
	// Duration is how long a Stall holds the data, or after how long a Disconnect plugs
	// the cable back in (0: stay unplugged until Link.Reconnect).
	Duration time.Duration
}

// Defaults for faults that carry no argument.
const (
	DefaultStall       = time.Second
	RandomStall        = 250 * time.Millisecond
	RandomReplug       = time.Second
	maxFaultOffset     = int64(1) << 50
	maxFaultCount      = int64(1) << 20
	maxFaultDuration   = time.Hour
	maxFaultsInSpec    = 1000
	defaultRandomKinds = "drop|corrupt"
)

// ParseFaults reads a fault spec as given to `fieldflash sim --faults`; the grammar is in
// docs/simulator.md. An empty spec means a clean line.
//
//	drop@4096,corrupt@10000,stall@20000:2s,disconnect@50000,reset@70000,random=0.0005:drop|corrupt
func ParseFaults(spec string) ([]Fault, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	items := strings.Split(spec, ",")
	if len(items) > maxFaultsInSpec {
		return nil, fmt.Errorf("fault spec: %d items, at most %d; shorten the spec", len(items), maxFaultsInSpec)
	}
	var faults []Fault
	for _, item := range items {
		item = strings.TrimSpace(item)
		fs, err := parseFaultItem(item)
		if err != nil {
			return nil, fmt.Errorf("fault spec: %q: %v; see docs/simulator.md for the grammar", item, err)
		}
		faults = append(faults, fs...)
	}
	return faults, nil
}

func parseFaultItem(item string) ([]Fault, error) {
	if rest, ok := strings.CutPrefix(item, "random="); ok {
		return parseRandom(rest)
	}
	name, at, ok := strings.Cut(item, "@")
	if !ok {
		return nil, errors.New(`want kind@offset (e.g. drop@4096) or random=rate`)
	}
	kind, ok := parseKind(name)
	if !ok {
		return nil, fmt.Errorf("unknown fault %q; one of drop, corrupt, stall, disconnect, reset", name)
	}
	f := Fault{Kind: kind, Dir: HostToDevice}
	parts := strings.Split(at, ":")
	if d, ok := parseDir(parts[0]); ok && d != BothWays {
		f.Dir = d
		parts = parts[1:]
	}
	if len(parts) == 0 || len(parts) > 2 {
		return nil, errors.New("want kind@[h2d:|d2h:]offset[:arg]")
	}
	off, err := parseOffset(parts[0])
	if err != nil {
		return nil, err
	}
	f.Offset = off
	arg := ""
	if len(parts) == 2 {
		arg = parts[1]
		if arg == "" {
			return nil, errors.New("empty argument after ':'")
		}
	}
	switch kind {
	case Drop, Corrupt:
		f.Count = 1
		if arg != "" {
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || n < 1 || n > maxFaultCount {
				return nil, fmt.Errorf("byte count %q: want a whole number from 1 to %d", arg, maxFaultCount)
			}
			f.Count = n
		}
	case Stall:
		f.Duration = DefaultStall
		if arg != "" {
			if f.Duration, err = parseDuration(arg); err != nil {
				return nil, err
			}
		}
	case Disconnect:
		if arg != "" {
			if f.Duration, err = parseDuration(arg); err != nil {
				return nil, err
			}
		}
	case Reset:
		if arg != "" {
			return nil, errors.New("reset takes no argument")
		}
	}
	return []Fault{f}, nil
}

// parseRandom reads "rate[:kind|kind...][:h2d|d2h|both]". The rate is the chance that a
// byte is hit at all; it is split evenly among the kinds.
func parseRandom(s string) ([]Fault, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return nil, errors.New("want random=rate[:kinds][:direction]")
	}
	rate, err := strconv.ParseFloat(parts[0], 64)
	if err != nil || math.IsNaN(rate) || rate <= 0 || rate > 1 {
		return nil, fmt.Errorf("rate %q: want a probability per byte, greater than 0 and at most 1 (e.g. 0.0005)", parts[0])
	}
	kinds, dir := defaultRandomKinds, BothWays
	rest := parts[1:]
	if len(rest) > 0 {
		if d, ok := parseDir(rest[len(rest)-1]); ok {
			dir = d
			rest = rest[:len(rest)-1]
		}
	}
	if len(rest) > 1 {
		return nil, errors.New("want random=rate[:kinds][:direction]")
	}
	if len(rest) == 1 {
		kinds = rest[0]
	}
	names := strings.Split(kinds, "|")
	seen := map[Kind]bool{}
	var out []Fault
	for _, n := range names {
		k, ok := parseKind(n)
		if !ok {
			return nil, fmt.Errorf("unknown fault %q; one of drop, corrupt, stall, disconnect, reset", n)
		}
		if seen[k] {
			return nil, fmt.Errorf("fault %q listed twice", n)
		}
		seen[k] = true
		f := Fault{Kind: k, Dir: dir, Rate: rate / float64(len(names))}
		switch k {
		case Drop, Corrupt:
			f.Count = 1
		case Stall:
			f.Duration = RandomStall
		case Disconnect:
			f.Duration = RandomReplug
		}
		out = append(out, f)
	}
	return out, nil
}

func parseDir(s string) (Direction, bool) {
	switch s {
	case "h2d":
		return HostToDevice, true
	case "d2h":
		return DeviceToHost, true
	case "both":
		return BothWays, true
	}
	return 0, false
}

// parseOffset reads a byte offset: decimal, optionally with k (KiB) or M (MiB).
func parseOffset(s string) (int64, error) {
	mul := int64(1)
	num := s
	switch {
	case strings.HasSuffix(s, "k"):
		mul, num = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mul, num = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > maxFaultOffset/mul {
		return 0, fmt.Errorf("offset %q: want a byte count from 0 to %d, optionally with k or M", s, maxFaultOffset)
	}
	return n * mul, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxFaultDuration {
		return 0, fmt.Errorf("duration %q: want e.g. 500ms or 2s, at most %v", s, maxFaultDuration)
	}
	return d, nil
}

// String gives the fault in spec syntax; ParseFaults reads it back to the same Fault.
func (f Fault) String() string {
	if f.Rate > 0 {
		return "random=" + strconv.FormatFloat(f.Rate, 'g', -1, 64) + ":" + f.Kind.String() + ":" + f.Dir.String()
	}
	s := f.Kind.String() + "@"
	if f.Dir == DeviceToHost {
		s += "d2h:"
	}
	s += strconv.FormatInt(f.Offset, 10)
	switch f.Kind {
	case Drop, Corrupt:
		if f.Count > 1 {
			s += ":" + strconv.FormatInt(f.Count, 10)
		}
	case Stall, Disconnect:
		if f.Duration > 0 {
			s += ":" + f.Duration.String()
		}
	}
	return s
}

// FormatFaults writes faults back as a spec.
func FormatFaults(faults []Fault) string {
	parts := make([]string, len(faults))
	for i, f := range faults {
		parts[i] = f.String()
	}
	return strings.Join(parts, ",")
}
