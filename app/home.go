package app

import (
	"fmt"
	"os"
	"path/filepath"
)

// HomeEnv names the environment variable that moves all of fieldflash's state.
const HomeEnv = "FIELDFLASH_HOME"

// Home returns the directory that holds every piece of fieldflash state: $FIELDFLASH_HOME,
// or "fieldflash" under the OS user config directory (~/.config/fieldflash on Linux,
// %AppData%\fieldflash on Windows, ~/Library/Application Support/fieldflash on macOS).
func Home() (string, error) {
	if h := os.Getenv(HomeEnv); h != "" {
		return filepath.Abs(h)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a place for fieldflash's state: %v; set %s to a writable directory", err, HomeEnv)
	}
	return filepath.Join(dir, "fieldflash"), nil
}
