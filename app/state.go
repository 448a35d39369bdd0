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

// DiskState is verify.State kept under $FIELDFLASH_HOME/state: one file per pinned root
// (named by its verify.PinnedRoot.StateKey: repository@pin-hash) with the newest metadata
// trusted so far (as verify hands it over: the signed
// parts with the signatures that counted), and one file with the newest trusted time. Each file is replaced
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

// fileName keeps readable state keys (a plain repository name, verify.StateKeySeparator
// and the pin's hash) readable and encodes any other, so no name can reach outside the
// state directory.
func fileName(key string) string {
	name, pin, keyed := cutStateKey(key)
	if plainName.MatchString(name) && !windowsDevice(name) && (!keyed || pinHash.MatchString(pin)) {
		return key + ".json"
	}
	return "x-" + hex.EncodeToString([]byte(key)) + ".json"
}

var pinHash = regexp.MustCompile(`^[0-9a-f]{32}$`)

// cutStateKey splits a verify.PinnedRoot.StateKey into the repository name and the pin's
// hash; keyed is false for a bare name (state files written before state was keyed by pin).
func cutStateKey(key string) (name, pin string, keyed bool) {
	i := strings.LastIndex(key, verify.StateKeySeparator)
	if i < 0 {
		return key, "", false
	}
	return key[:i], key[i+len(verify.StateKeySeparator):], true
}

// keyOfFile is the state key a file of the state directory holds, or "" for other files.
func keyOfFile(file string) string {
	base, ok := strings.CutSuffix(file, ".json")
	if !ok || base == "" || strings.HasPrefix(base, ".") {
		return ""
	}
	if enc, ok := strings.CutPrefix(base, "x-"); ok {
		if b, err := hex.DecodeString(enc); err == nil {
			return string(b)
		}
	}
	return base
}

// Forget deletes everything learned under any pin of repository: the newest metadata kept
// for each root ever pinned under that name (and a state file from before state was keyed
// by pin). Unpinning a root must remove the trust it built up, or a compromised root's
// newest version would outlive the pin.
func (s *DiskState) Forget(repository string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		key := keyOfFile(e.Name())
		if key == "" || e.IsDir() {
			continue
		}
		if name, _, _ := cutStateKey(key); name != repository {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forgetting the trust state of %q: %v; delete %s by hand", repository, err, filepath.Join(s.dir, e.Name()))
		}
		removed = true
	}
	if removed {
		return syncDir(s.dir)
	}
	return nil
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
func (s *DiskState) Load(key string) (*verify.Saved, error) {
	path := filepath.Join(s.dir, fileName(key))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		name, _, _ := cutStateKey(key)
		return nil, fmt.Errorf("trusted state %s is damaged: %v; move it away to start over (rollback protection for %q restarts from the pinned root)", path, err, name)
	}
	return &verify.Saved{Root: f.Root, Timestamp: f.Timestamp, Snapshot: f.Snapshot, Targets: f.Targets}, nil
}

// Save implements verify.State.
func (s *DiskState) Save(key string, saved *verify.Saved) error {
	data, err := json.MarshalIndent(savedFile{Root: saved.Root, Timestamp: saved.Timestamp, Snapshot: saved.Snapshot, Targets: saved.Targets}, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, fileName(key)), data, 0o600)
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
