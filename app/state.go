package app

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/verify"
)

// DiskState is verify.State kept under $FIELDFLASH_HOME/state: one file per repository
// with the newest metadata trusted so far (the raw bytes, so a later bundle can be compared
// byte for byte), and one file with the newest trusted time. Each file is replaced
// atomically, so a crash never leaves a repository half-updated.
type DiskState struct {
	dir string
}

// NewDiskState opens (creating if needed) the state under home.
func NewDiskState(home string) (*DiskState, error) {
	dir := filepath.Join(home, "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %v; check that %s is writable or set %s", dir, err, home, HomeEnv)
	}
	return &DiskState{dir: dir}, nil
}

type savedFile struct {
	Root      []byte            `json:"root,omitempty"`
	Timestamp []byte            `json:"timestamp,omitempty"`
	Snapshot  []byte            `json:"snapshot,omitempty"`
	Targets   map[string][]byte `json:"targets,omitempty"`
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$`)

// fileName keeps readable repository names readable and encodes any other, so no name can
// reach outside the state directory.
func fileName(repository string) string {
	if plainName.MatchString(repository) && !windowsDevice(repository) {
		return repository + ".json"
	}
	return "x-" + hex.EncodeToString([]byte(repository)) + ".json"
}

// windowsDevice reports names Windows reserves for devices (CON, NUL, COM1, ...), with or
// without an extension: a state file of that name would be written to the device.
func windowsDevice(name string) bool {
	base := strings.ToUpper(strings.SplitN(name, ".", 2)[0])
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	return len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '0' && base[3] <= '9'
}

// Load implements verify.State.
func (s *DiskState) Load(repository string) (*verify.Saved, error) {
	path := filepath.Join(s.dir, fileName(repository))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("trusted state %s is damaged: %v; move it away to start over (rollback protection for %q restarts from the pinned root)", path, err, repository)
	}
	return &verify.Saved{Root: f.Root, Timestamp: f.Timestamp, Snapshot: f.Snapshot, Targets: f.Targets}, nil
}

// Save implements verify.State.
func (s *DiskState) Save(repository string, saved *verify.Saved) error {
	data, err := json.MarshalIndent(savedFile{Root: saved.Root, Timestamp: saved.Timestamp, Snapshot: saved.Snapshot, Targets: saved.Targets}, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, fileName(repository)), data, 0o600)
}

const newestTimeFile = "newest-time"

// NewestTime implements verify.State.
func (s *DiskState) NewestTime() (time.Time, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, newestTimeFile))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(data))
	if err != nil {
		return time.Time{}, fmt.Errorf("newest trusted time in %s is damaged: %v; delete the file to start over", filepath.Join(s.dir, newestTimeFile), err)
	}
	return t, nil
}

// SaveNewestTime implements verify.State.
func (s *DiskState) SaveNewestTime(t time.Time) error {
	return writeFileAtomic(filepath.Join(s.dir, newestTimeFile), []byte(t.UTC().Format(time.RFC3339Nano)), 0o600)
}

// Lock implements verify.Locker: an exclusive lock on state/.lock, held by one
// verification at a time across processes (the GUI, the CLI, scripts).
func (s *DiskState) Lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unlockFile(f)
		f.Close()
	}, nil
}
