// Package transports is how bytes reach a device. This package finds the ports a device
// may be on: serial ports with their USB identity, and the virtual devices that
// `fieldflash sim` and `fieldflash demo` announce. Opening a serial port is in
// transports/serial; which protocol a port speaks is for the flasher to probe.
package transports

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PortInfo is one port a device may be on.
type PortInfo struct {
	Path         string `json:"path"`
	USB          bool   `json:"usb,omitempty"`
	VID          string `json:"vid,omitempty"` // USB vendor id, 4 hex digits, e.g. "2fe3"
	PID          string `json:"pid,omitempty"` // USB product id, 4 hex digits
	SerialNumber string `json:"serial_number,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	// Virtual is set for a device simulated by fieldflash; Protocol and Name come from
	// its announcement.
	Virtual  bool   `json:"virtual,omitempty"`
	Protocol string `json:"protocol,omitempty"` // e.g. "smp", "ymodem": what a virtual device speaks
	Name     string `json:"name,omitempty"`
}

// Announcement is the small JSON file a virtual device writes under SimDir so that
// `fieldflash devices` and the GUI list it beside real ports:
//
//	{"path": "/home/ana/.config/fieldflash/sim/ttySIM0", "protocol": "smp", "name": "sim-smp-0", "pid": 4242}
//
// Path is what a host opens (a stable symlink or a /dev/pts path). PID is the process
// serving the device: an announcement whose process is gone, or whose path no longer
// exists, is stale and not listed.
type Announcement struct {
	Path       string `json:"path"`
	Protocol   string `json:"protocol"`
	Name       string `json:"name,omitempty"`
	PID        int    `json:"pid"`
	HardwareID string `json:"hardware_id,omitempty"`
}

// HomeEnv moves all of fieldflash's state; the rule for its default matches app.Home,
// which transports may not import.
const HomeEnv = "FIELDFLASH_HOME"

// Limits on what List reads from SimDir, which any local process can write to.
const (
	maxAnnouncementSize = 64 << 10
	maxAnnouncements    = 256
)

// SimDir is where virtual devices announce themselves: $FIELDFLASH_HOME/sim, or
// fieldflash/sim under the user config directory.
func SimDir() (string, error) {
	home := os.Getenv(HomeEnv)
	if home == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("cannot find fieldflash's state directory: %v; set %s to a writable directory", err, HomeEnv)
		}
		home = filepath.Join(dir, "fieldflash")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("fieldflash state directory %s: %v; set %s to an absolute path", home, err, HomeEnv)
	}
	return filepath.Join(abs, "sim"), nil
}

// List returns the serial ports of this machine (USB ones with vendor, product and
// serial number), then the announced virtual devices, each port once. A machine without
// serial ports gives an empty list, not an error.
func List() ([]PortInfo, error) {
	ports, err := serialPorts()
	if err != nil {
		return nil, fmt.Errorf("listing serial ports: %v; check that /dev (or the OS device list) is readable, or open a port by path", err)
	}
	slices.SortFunc(ports, func(a, b PortInfo) int { return cmp.Compare(a.Path, b.Path) })
	dir, err := SimDir()
	if err != nil {
		return ports, nil // no state directory, no virtual devices: real ports still count
	}
	virtual, err := listAnnounced(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range ports {
		seen[p.Path] = true
	}
	for _, v := range virtual {
		if !seen[v.Path] {
			seen[v.Path] = true
			ports = append(ports, v)
		}
	}
	return ports, nil
}

// listAnnounced reads the announcements in dir, skipping stale and unreadable ones: one
// broken file must not hide the others.
func listAnnounced(dir string) ([]PortInfo, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("virtual devices in %s: %v; check the directory's permissions", dir, err)
	}
	var out []PortInfo
	for _, e := range entries {
		if len(out) >= maxAnnouncements {
			break
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		a, err := readAnnouncementFile(filepath.Join(dir, e.Name()))
		if err != nil || !a.live() {
			continue
		}
		out = append(out, PortInfo{Path: a.Path, Virtual: true, Protocol: a.Protocol, Name: a.Name})
	}
	slices.SortFunc(out, func(a, b PortInfo) int { return cmp.Compare(a.Path, b.Path) })
	return out, nil
}

func readAnnouncementFile(path string) (*Announcement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxAnnouncementSize+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > maxAnnouncementSize {
		return nil, fmt.Errorf("virtual device announcement %s: larger than %d bytes; delete it", path, maxAnnouncementSize)
	}
	a, err := ParseAnnouncement(buf)
	if err != nil {
		return nil, fmt.Errorf("virtual device announcement %s: %v; delete it or restart `fieldflash sim`", path, err)
	}
	return a, nil
}

// ParseAnnouncement reads one announcement file's bytes.
func ParseAnnouncement(b []byte) (*Announcement, error) {
	var a Announcement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("not an announcement: %v", err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return nil, errors.New("trailing data after the announcement")
	}
	switch {
	case a.Path == "" || !filepath.IsAbs(a.Path) || strings.ContainsRune(a.Path, 0):
		return nil, fmt.Errorf("path %q: want an absolute path", a.Path)
	case a.Protocol == "" || len(a.Protocol) > 32 || strings.ContainsFunc(a.Protocol, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }):
		return nil, fmt.Errorf("protocol %q: want a short lower-case name such as smp or ymodem", a.Protocol)
	case a.PID < 0:
		return nil, fmt.Errorf("pid %d: negative", a.PID)
	case len(a.Name) > 128 || len(a.HardwareID) > 128 || len(a.Path) > 4096:
		return nil, errors.New("name, hardware id or path too long")
	}
	return &a, nil
}

// live reports whether the announced device can still be opened: its path exists and its
// process runs. A dead simulator's symlink could otherwise point at a /dev/pts number the
// kernel has since given to someone's shell.
func (a *Announcement) live() bool {
	if _, err := os.Stat(a.Path); err != nil {
		return false
	}
	return a.PID == 0 || processAlive(a.PID)
}

// Announce writes a's file under SimDir (as <name or protocol-pid>.json, atomically) and
// returns the function that withdraws it. A zero PID is filled with this process's.
func Announce(a Announcement) (withdraw func() error, err error) {
	if a.PID == 0 {
		a.PID = os.Getpid()
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := ParseAnnouncement(b); err != nil {
		return nil, fmt.Errorf("announcing virtual device: %v", err)
	}
	dir, err := SimDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("announcing virtual device in %s: %v; set %s to a writable directory", dir, err, HomeEnv)
	}
	base := a.Name
	if base == "" {
		base = fmt.Sprintf("%s-%d", a.Protocol, a.PID)
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, base)
	path := filepath.Join(dir, strings.TrimLeft(base, ".")+".json")
	tmp, err := os.CreateTemp(dir, ".announce-*")
	if err != nil {
		return nil, fmt.Errorf("announcing virtual device in %s: %v; set %s to a writable directory", dir, err, HomeEnv)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("announcing virtual device %s: %v", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("announcing virtual device %s: %v", path, err)
	}
	return func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("withdrawing virtual device %s: %v; delete the file by hand", path, err)
		}
		return nil
	}, nil
}
