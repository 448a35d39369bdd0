package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"github.com/fieldflash/fieldflash/flasher"
)

// maxJournals bounds what History reads: a journal directory is written by fieldflash
// alone, but a full disk or a copy from elsewhere must not make the window hang.
const (
	maxJournals    = 2000
	maxJournalSize = 1 << 20
)

// History lists the updates this session's journals remember, newest first: finished
// ones with their outcome, and unfinished ones (a resume is possible). The full record of
// what was done here is the audit log (ListAudit; the window's Audit log screen).
func (s *Session) History() ([]JournalEntry, error) { return ReadJournals(s.JournalDir()) }

// ReadJournals reads the journal files in dir, skipping any that cannot be read: one
// broken file must not hide the others.
func ReadJournals(dir string) ([]JournalEntry, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) > maxJournals {
		names = names[:maxJournals]
	}
	var out []flasher.JournalEntry
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxJournalSize {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		var e flasher.JournalEntry
		if json.Unmarshal(b, &e) != nil || e.Format != 1 {
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b flasher.JournalEntry) int { return b.Updated.Compare(a.Updated) })
	return out, nil
}
