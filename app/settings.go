package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// SaveSettings writes the settings under home, atomically.
func SaveSettings(home string, s Settings) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("settings %s: %v", settingsPath(home), err)
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := writeFileAtomic(settingsPath(home), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("settings %s: %v", settingsPath(home), err)
	}
	return nil
}
