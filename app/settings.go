package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Modes of the desktop app.
const (
	ModeTechnician = "technician" // every screen: bundle, devices, several at once, recovery, history
	ModeSimple     = "simple"     // end users: one device, one bundle, one large button
)

// Themes of the desktop app.
const (
	ThemeSystem = "system"
	ThemeLight  = "light"
	ThemeDark   = "dark"
)

// Settings are the person's choices that outlive a run: the desktop app's mode and
// theme, and the serial defaults both faces use when nothing else is said.
type Settings struct {
	Mode     string `json:"mode"`
	Theme    string `json:"theme"`
	Baud     int    `json:"baud"`
	Protocol string `json:"protocol"` // "" probes the port
	// AskDevices: ask each new USB or virtual port what answers on it (an SMP echo, a
	// newline for a YMODEM banner; nothing is written, nothing reset). Off for unknown
	// hardware; built-in serial ports are asked only on request.
	AskDevices bool `json:"ask_devices"`
}

// DefaultSettings are what a fresh machine starts with.
func DefaultSettings() Settings {
	return Settings{Mode: ModeTechnician, Theme: ThemeSystem, Baud: DefaultBaud, AskDevices: true}
}

func settingsPath(home string) string { return filepath.Join(home, "settings.json") }

// LoadSettings reads the settings under home, or the defaults when there are none. A
// file that cannot be read is an error naming it; a value out of range falls back to its
// default.
func LoadSettings(home string) (Settings, error) {
	s := DefaultSettings()
	b, err := os.ReadFile(settingsPath(home))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings %s: %v", settingsPath(home), err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return DefaultSettings(), fmt.Errorf("settings %s: %v; delete the file to start from the defaults", settingsPath(home), err)
	}
	d := DefaultSettings()
	if s.Mode != ModeTechnician && s.Mode != ModeSimple {
		s.Mode = d.Mode
	}
	if s.Theme != ThemeSystem && s.Theme != ThemeLight && s.Theme != ThemeDark {
		s.Theme = d.Theme
	}
	if s.Baud <= 0 || s.Baud > 16_000_000 {
		s.Baud = d.Baud
	}
	if s.Protocol != "" && s.Protocol != "smp" && s.Protocol != "ymodem" {
		s.Protocol = ""
	}
	return s, nil
}

// SaveSettings writes the settings under home, atomically, and records what changed in
// the audit log.
func SaveSettings(home string, s Settings) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("settings %s: %v", settingsPath(home), err)
	}
	before, _ := LoadSettings(home)
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := writeFileAtomic(settingsPath(home), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("settings %s: %v", settingsPath(home), err)
	}
	if changes := settingChanges(before, s); changes != "" {
		if err := auditSetting(home, changes); err != nil {
			return fmt.Errorf("settings saved (%s), but the audit log could not record it: %v", changes, err)
		}
	}
	return nil
}

// settingChanges says in words what differs between two settings ("" for nothing).
func settingChanges(a, b Settings) string {
	var out []string
	add := func(name string, x, y any) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %v -> %v", name, x, y))
		}
	}
	add("mode", a.Mode, b.Mode)
	add("theme", a.Theme, b.Theme)
	add("baud", a.Baud, b.Baud)
	add("protocol", orProbe(a.Protocol), orProbe(b.Protocol))
	add("ask devices", a.AskDevices, b.AskDevices)
	return strings.Join(out, ", ")
}

func orProbe(p string) string {
	if p == "" {
		return "probe"
	}
	return p
}
