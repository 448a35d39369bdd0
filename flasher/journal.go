package flasher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// JournalKey names one update: one device, one image. The same image flashed to the same
// device again after a crash finds the same journal.
type JournalKey struct {
	Device      string `json:"device"`       // a stable id of the device: hardware id and serial number
	ImageSHA256 string `json:"image_sha256"` // hex SHA-256 of the payload
}

// JournalEntry is what a journal file holds.
type JournalEntry struct {
	Format      int        `json:"format"` // 1
	Key         JournalKey `json:"key"`
	Bundle      string     `json:"bundle,omitempty"`
	Target      string     `json:"target,omitempty"`
	Protocol    string     `json:"protocol,omitempty"`
	Size        int64      `json:"size,omitempty"`
	Step        Step       `json:"step"`  // the step under way (or reached) when written
	Acked       int64      `json:"acked"` // bytes the device had acknowledged
	Runs        int        `json:"runs"`  // how many runs worked on this update
	Started     time.Time  `json:"started"`
	Updated     time.Time  `json:"updated"`
	Finished    bool       `json:"finished"`
	Outcome     *Outcome   `json:"outcome,omitempty"`
	journalPath string
}

// DefaultJournalEvery is how many acknowledged bytes pass between two journal writes
// during a transfer. The device's own offset is the resume point; the journal only needs
// to know that a transfer was under way, so writes stay rare on fast links.
const DefaultJournalEvery = 64 << 10

// Journal is the on-disk record of one update, rewritten atomically (temp file, fsync,
// rename, fsync of the directory) at every step change and every Every acknowledged
// bytes, so a crash of the app, the laptop or the link resumes where it stopped.
type Journal struct {
	Every int64 // bytes between writes during transfer; DefaultJournalEvery when 0

	mu      sync.Mutex
	dir     string
	path    string
	entry   JournalEntry
	written int64 // Acked at the last write
	loaded  bool  // a previous run's entry was found
}

// OpenJournal opens (creating dir if needed) the journal for key under dir. It reads a
// previous run's entry if there is one; Load returns it.
func OpenJournal(dir string, key JournalKey) (*Journal, error) {
	if key.Device == "" || key.ImageSHA256 == "" {
		return nil, &Error{Code: CodeJournal, Thing: "journal", Reason: "needs a device id and an image hash", Next: "this is a bug in the caller; report it"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, journalError(dir, err)
	}
	j := &Journal{dir: dir, path: filepath.Join(dir, journalName(key))}
	b, err := os.ReadFile(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		j.entry = JournalEntry{Format: 1, Key: key, Step: StepPreflight}
	case err != nil:
		return nil, journalError(j.path, err)
	default:
		if err := json.Unmarshal(b, &j.entry); err != nil || j.entry.Key != key {
			// A torn or foreign file cannot happen with rename, but a disk can lie. Start
			// over: the device's own state (offset, slots) is still the truth.
			j.entry = JournalEntry{Format: 1, Key: key, Step: StepPreflight}
		} else {
			j.loaded = true
			j.written = j.entry.Acked
		}
	}
	j.entry.journalPath = j.path
	return j, nil
}

func journalError(path string, err error) error {
	return &Error{Code: CodeJournal, Thing: "journal " + path, Reason: err.Error(), Next: "check that $FIELDFLASH_HOME is writable and the disk is not full", Err: err}
}

// journalName is readable for support staff yet cannot collide or escape the directory.
func journalName(key JournalKey) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, key.Device)
	safe = strings.TrimLeft(safe, ".")
	if len(safe) > 40 {
		safe = safe[:40]
	}
	sum := sha256.Sum256([]byte(key.Device + "\x00" + key.ImageSHA256))
	return fmt.Sprintf("%s-%s.json", safe, hex.EncodeToString(sum[:8]))
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// Load returns the previous run's entry, or nil when this update has no journal yet.
func (j *Journal) Load() *JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.loaded {
		return nil
	}
	e := j.entry
	return &e
}

// begin records what the run is about and counts the run.
func (j *Journal) begin(p *Plan, now time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entry.Finished || !j.loaded {
		j.entry = JournalEntry{Format: 1, Key: j.entry.Key, Step: StepPreflight, Started: now, journalPath: j.path}
	}
	j.entry.Bundle = p.Bundle
	j.entry.Target = p.Image.Name
	j.entry.Protocol = p.Protocol
	j.entry.Size = p.Image.Size
	j.entry.Runs++
	j.entry.Updated = now
	return j.writeLocked()
}

// Record notes the step under way and the bytes acknowledged. It writes at once when the
// step changed and otherwise only every Every bytes.
func (j *Journal) Record(step Step, acked int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	every := j.Every
	if every <= 0 {
		every = DefaultJournalEvery
	}
	changed := step != j.entry.Step
	j.entry.Step, j.entry.Acked = step, acked
	if !changed && acked >= j.written && acked-j.written < every {
		return nil
	}
	j.entry.Updated = time.Now()
	return j.writeLocked()
}

// Finish records the outcome. A finished journal does not resume: the next run of the
// same update starts over from preflight, which finds the image already running.
func (j *Journal) Finish(o *Outcome) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entry.Finished = true
	j.entry.Outcome = o
	j.entry.Step = StepDone
	j.entry.Updated = time.Now()
	return j.writeLocked()
}

func (j *Journal) writeLocked() error {
	if j.path == "" {
		return nil // Run was given no journal: nothing persists
	}
	b, err := json.MarshalIndent(&j.entry, "", "  ")
	if err != nil {
		return journalError(j.path, err)
	}
	if err := writeFileAtomic(j.path, append(b, '\n')); err != nil {
		return journalError(j.path, err)
	}
	j.written = j.entry.Acked
	j.loaded = true
	return nil
}

// writeFileAtomic replaces path with b so that a crash at any instant leaves either the
// old or the new file whole.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".journal-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}
