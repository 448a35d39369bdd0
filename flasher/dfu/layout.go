package dfu

import (
	"fmt"
	"strconv"
	"strings"
)

// Layout is a DfuSe memory layout, the string an alternate setting's name carries, e.g.
// "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg": a name, then one or more
// "/start/count*size[unit]type,..." groups (UM0424 section 10.3; unit ' ', 'K' or 'M';
// type 'a' to 'g', a bit set of readable 1, erasable 2, writable 4).
type Layout struct {
	Name    string
	Sectors []Sector // in address order within each group, groups as listed
}

// Sector is one erase unit of a layout.
type Sector struct {
	Start uint32
	Size  uint32
	Type  SectorType
}

// SectorType is the access a DfuSe layout gives a sector.
type SectorType uint8

// The sector access bits.
const (
	Readable SectorType = 1
	Erasable SectorType = 2
	Writable SectorType = 4
)

// End is one past the sector's last address, as a uint64 so that a sector ending at 4 GiB
// does not wrap.
func (s Sector) End() uint64 { return uint64(s.Start) + uint64(s.Size) }

// maxLayoutSectors bounds what a layout string may make us allocate; ST's largest parts
// list a few thousand pages.
const maxLayoutSectors = 1 << 16

// IsLayout says whether an alternate setting's name is a DfuSe memory layout.
func IsLayout(name string) bool { return strings.HasPrefix(name, "@") }

// ParseLayout reads a DfuSe memory layout string.
func ParseLayout(s string) (*Layout, error) {
	if !IsLayout(s) {
		return nil, fmt.Errorf("dfu: memory layout %q does not start with '@'", s)
	}
	parts := strings.Split(s[1:], "/")
	if len(parts) < 3 || len(parts)%2 != 1 {
		return nil, fmt.Errorf("dfu: memory layout %q: expected \"@name/0xADDRESS/count*size...\"", s)
	}
	l := &Layout{Name: strings.TrimSpace(parts[0])}
	for g := 1; g+1 < len(parts); g += 2 {
		a := strings.TrimSpace(parts[g])
		start, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(a, "0x"), "0X"), 16, 32)
		if err != nil || !strings.HasPrefix(strings.ToLower(a), "0x") {
			return nil, fmt.Errorf("dfu: memory layout %q: start address %q is not 0x followed by hex digits", s, a)
		}
		addr := uint64(start)
		for _, spec := range strings.Split(parts[g+1], ",") {
			n, size, typ, err := parseSectors(spec)
			if err != nil {
				return nil, fmt.Errorf("dfu: memory layout %q: %v", s, err)
			}
			if len(l.Sectors)+n > maxLayoutSectors {
				return nil, fmt.Errorf("dfu: memory layout %q lists more than %d sectors", s, maxLayoutSectors)
			}
			for range n {
				if addr+uint64(size) > 1<<32 {
					return nil, fmt.Errorf("dfu: memory layout %q runs past the 32-bit address space", s)
				}
				l.Sectors = append(l.Sectors, Sector{Start: uint32(addr), Size: size, Type: typ})
				addr += uint64(size)
			}
		}
	}
	return l, nil
}

// parseSectors reads "04*016Kg": count, size with its unit, type letter.
func parseSectors(spec string) (int, uint32, SectorType, error) {
	t := strings.TrimSpace(spec)
	count, rest, ok := strings.Cut(t, "*")
	if !ok {
		return 0, 0, 0, fmt.Errorf("sector group %q has no '*'", spec)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n <= 0 || n > maxLayoutSectors {
		return 0, 0, 0, fmt.Errorf("sector group %q: count %q is not a number from 1 to %d", spec, count, maxLayoutSectors)
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	size, err := strconv.ParseUint(rest[:i], 10, 32)
	if err != nil || size == 0 {
		return 0, 0, 0, fmt.Errorf("sector group %q: size is not a number", spec)
	}
	tail := strings.TrimSpace(rest[i:])
	mult := uint64(1)
	if tail != "" {
		switch tail[0] {
		case 'K':
			mult, tail = 1024, tail[1:]
		case 'M':
			mult, tail = 1024*1024, tail[1:]
		case 'B':
			tail = tail[1:]
		}
	}
	tail = strings.TrimSpace(tail)
	if len(tail) != 1 || tail[0] < 'a' || tail[0] > 'g' {
		return 0, 0, 0, fmt.Errorf("sector group %q: type %q is not one letter from a to g", spec, tail)
	}
	size *= mult
	if size > 1<<31 {
		return 0, 0, 0, fmt.Errorf("sector group %q: sector size %d is too large", spec, size)
	}
	return n, uint32(size), SectorType(tail[0]-'a'+1) & 7, nil
}

// Sector returns the sector that holds addr.
func (l *Layout) Sector(addr uint32) (Sector, bool) {
	for _, s := range l.Sectors {
		if addr >= s.Start && uint64(addr) < s.End() {
			return s, true
		}
	}
	return Sector{}, false
}

// Covering returns the sectors that [addr, addr+n) touches, in address order, or an
// error naming the first address no sector holds.
func (l *Layout) Covering(addr uint32, n uint32) ([]Sector, error) {
	var out []Sector
	end := uint64(addr) + uint64(n)
	for a := uint64(addr); a < end; {
		s, ok := l.Sector(uint32(a))
		if !ok || a > 0xffffffff {
			return nil, fmt.Errorf("address 0x%08x is outside %q's memory", a, l.Name)
		}
		out = append(out, s)
		a = s.End()
	}
	return out, nil
}

// String prints the layout compactly, as ST writes it.
func (l *Layout) String() string {
	var b strings.Builder
	b.WriteString(l.Name)
	var prevEnd uint64 = 1 << 40
	for i := 0; i < len(l.Sectors); {
		s := l.Sectors[i]
		j := i
		for j < len(l.Sectors) && l.Sectors[j].Size == s.Size && l.Sectors[j].Type == s.Type && (j == i || uint64(l.Sectors[j].Start) == l.Sectors[j-1].End()) {
			j++
		}
		if uint64(s.Start) != prevEnd {
			fmt.Fprintf(&b, " 0x%08x:", s.Start)
		} else {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d×%s %s", j-i, sizeString(s.Size), s.Type)
		prevEnd = l.Sectors[j-1].End()
		i = j
	}
	return b.String()
}

func sizeString(n uint32) string {
	switch {
	case n%(1024*1024) == 0:
		return fmt.Sprintf("%d MiB", n/(1024*1024))
	case n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func (t SectorType) String() string {
	s := ""
	for _, x := range []struct {
		bit  SectorType
		name string
	}{{Readable, "r"}, {Erasable, "e"}, {Writable, "w"}} {
		if t&x.bit != 0 {
			s += x.name
		} else {
			s += "-"
		}
	}
	return s
}
