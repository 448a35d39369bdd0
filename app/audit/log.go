package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Head is the newest entry of a log: its number and hash. Printed or sent elsewhere it is
// an anchor: a later log that no longer holds that entry with that hash was cut or edited.
type Head struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time,omitzero"`
}

// String is the head as people copy it: SEQ:HASH.
func (h Head) String() string { return fmt.Sprintf("%d:%s", h.Seq, h.Hash) }

// Log is an audit log opened for appending. It is safe for several goroutines, and
// several processes may append to the same file: each append takes an exclusive lock on
// the file and picks up what the others wrote.
type Log struct {
	path string
	// NoSync skips the fsync after each append. Only benchmarks set it, to state what
	// the fsync costs; an entry appended without it may be lost in a power cut.
	NoSync bool

	mu   sync.Mutex
	f    *os.File
	head Head
	end  int64 // file offset just after the head's line
	// fixes are the torn tails this Log found and noted, for the person to be told.
	fixes []Fix
}

// Fix is a torn tail that Open or Append found and dealt with.
type Fix struct {
	// Entry is the torn-record entry that now names the torn bytes (Seq 0 when the
	// torn line turned out to be a whole entry that only lacked its line end).
	Entry Entry
	// Text says what happened, for people.
	Text string
}

// tailWindow is how much of the end of the log Open reads to find the newest intact
// entry; it grows when a window holds none.
const tailWindow = 256 << 10

// Open opens (creating if needed, mode 0600) the log at path for appending. When the last
// line is torn (a power cut in the middle of a write) Open keeps its bytes and appends a
// torn-record entry naming them; Fixes reports that.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %v; check that the directory is writable", path, err)
	}
	l := &Log{path: path, f: f}
	if err := l.locked(func() error { return nil }); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Close closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Head is the newest entry as of the last append (or Open).
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// Fixes are the torn tails found and noted since Open.
func (l *Log) Fixes() []Fix {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Fix(nil), l.fixes...)
}

// Append adds e to the log: it sets Seq, Prev and Hash, writes the line and fsyncs it.
// When Append returns nil the entry is on disk (acknowledged); the returned Entry is what
// was written.
func (l *Log) Append(e Entry) (Entry, error) {
	var out Entry
	err := l.locked(func() error {
		var err error
		out, err = l.appendLocked(e)
		return err
	})
	return out, err
}

// locked runs fn holding the process lock and the file lock, after catching up with what
// other processes appended and noting a torn tail.
func (l *Log) locked(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("audit log %s: closed", l.path)
	}
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("audit log %s: lock: %v", l.path, err)
	}
	defer unlockFile(l.f)
	if err := l.catchUp(); err != nil {
		return err
	}
	return fn()
}

// catchUp brings head and end to the file's current end: another process may have
// appended, and a crash may have left a torn tail, which is noted here.
func (l *Log) catchUp() error {
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit log %s: %v", l.path, err)
	}
	size := st.Size()
	if size == l.end && l.end > 0 {
		return nil
	}
	tail, err := findTail(l.f, size)
	if err != nil {
		return fmt.Errorf("audit log %s: %v; run `fieldflash audit verify` and keep a copy of the file for support", l.path, err)
	}
	l.head, l.end = tail.head, tail.end
	if tail.unterminated {
		// The last line is a whole entry that continues the chain; only its newline
		// was lost. It stays, and so does a note of it.
		if err := l.write([]byte{'\n'}); err != nil {
			return err
		}
		l.end = size + 1
		l.fixes = append(l.fixes, Fix{Text: fmt.Sprintf("entry %d was written whole but its line end was lost (a crash right after writing it); it is kept", l.head.Seq)})
		return nil
	}
	if tail.end == size {
		return nil
	}
	// Torn bytes from end to size: end them with a newline, then name them in an entry.
	span := make([]byte, size-tail.end, size-tail.end+1)
	if _, err := l.f.ReadAt(span, tail.end); err != nil {
		return fmt.Errorf("audit log %s: reading the torn tail: %v", l.path, err)
	}
	if span[len(span)-1] != '\n' {
		if err := l.write([]byte{'\n'}); err != nil {
			return err
		}
		span = append(span, '\n')
	}
	sum := sha256.Sum256(span)
	after := l.head.Seq
	note := Entry{Time: time.Now().UTC(), Kind: KindTornRecord, Outcome: OutcomeFailed,
		Detail: fmt.Sprintf("%d bytes after entry %d are not a whole entry (a crash or power cut while writing); they are kept in the log just before this entry", len(span), after),
		Torn:   &Torn{Offset: tail.end, Length: int64(len(span)), SHA256: hex.EncodeToString(sum[:])}}
	l.end = tail.end + int64(len(span))
	written, err := l.appendLocked(note)
	if err != nil {
		return err
	}
	l.fixes = append(l.fixes, Fix{Entry: written, Text: fmt.Sprintf("the last record after entry %d was torn by a crash (%d bytes); noted as entry %d", after, len(span), written.Seq)})
	return nil
}

func (l *Log) appendLocked(e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	if e.Kind == "" {
		return Entry{}, errors.New("audit: an entry needs a kind")
	}
	e.Seq = l.head.Seq + 1
	e.Prev = l.head.Hash
	if e.Prev == "" {
		e.Prev = GenesisPrev
	}
	line, h, err := encode(e)
	if err != nil {
		return Entry{}, err
	}
	e.Hash = h
	buf := append(line, '\n')
	if err := l.write(buf); err != nil {
		// Part of the line may be on disk: the next catch-up finds and notes it.
		l.end = -1
		return Entry{}, err
	}
	l.head = Head{Seq: e.Seq, Hash: h, Time: e.Time}
	l.end += int64(len(buf))
	return e, nil
}

func (l *Log) write(b []byte) error {
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("audit log %s: %v; free some space or check the disk", l.path, err)
	}
	if l.NoSync {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit log %s: fsync: %v", l.path, err)
	}
	return nil
}

type tail struct {
	head Head
	end  int64 // offset just after the head's line (0 for a log with no intact entry)
	// unterminated: the bytes after end are one whole entry continuing the chain,
	// without its newline.
	unterminated bool
}

// findTail finds the newest intact entry by reading the end of the file, growing the
// window until one turns up or the whole file was read.
func findTail(r io.ReaderAt, size int64) (tail, error) {
	for window := int64(tailWindow); ; window *= 4 {
		base := max(size-window, 0)
		buf := make([]byte, size-base)
		if _, err := r.ReadAt(buf, base); err != nil && !errors.Is(err, io.EOF) {
			return tail{}, err
		}
		t, ok, err := lastIntact(buf, base)
		if err != nil {
			return tail{}, err
		}
		if ok || base == 0 {
			return t, nil
		}
	}
}

// lastIntact looks for the last whole line of buf (which starts at file offset base) that
// is an intact entry. The first line of a window that does not start the file may be cut
// and is not considered.
func lastIntact(buf []byte, base int64) (tail, bool, error) {
	lastNL := bytes.LastIndexByte(buf, '\n')
	var t tail
	found := false
	// Whole lines, newest first.
	stop := 0
	if base > 0 {
		first := bytes.IndexByte(buf, '\n')
		if first < 0 {
			return tail{}, false, nil
		}
		stop = first + 1
	}
	for end := lastNL; end >= stop; {
		start := bytes.LastIndexByte(buf[:end], '\n') + 1
		if start < stop {
			break
		}
		e, err := checkLine(buf[start:end])
		if err == nil {
			t = tail{head: Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, end: base + int64(end) + 1}
			found = true
			break
		}
		if le := (*LineError)(nil); errors.As(err, &le) && le.Edited {
			// Noting this as torn would launder an edit: nothing more is written until
			// a person has looked.
			return tail{}, false, fmt.Errorf("the entry at byte %d near the end was edited (%s), not torn by a crash; nothing more is written to the log until support has looked at it (`fieldflash audit verify` names it; move the file aside to start a new log)", base+int64(start), le.Reason)
		}
		end = start - 1
	}
	if !found && base > 0 {
		return tail{}, false, nil
	}
	// The bytes after the last newline: a whole entry that lost its newline continues
	// the chain and is kept; anything else there is torn.
	if frag := buf[lastNL+1:]; len(frag) > 0 && base+int64(lastNL+1) == t.end {
		e, err := checkLine(frag)
		if err == nil && e.Seq == t.head.Seq+1 && e.Prev == prevOf(t.head) {
			t = tail{head: Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, end: base + int64(len(buf)), unterminated: true}
		} else if le := (*LineError)(nil); errors.As(err, &le) && le.Edited {
			return tail{}, false, fmt.Errorf("the last entry was edited (%s), not torn by a crash; nothing more is written to the log until support has looked at it (`fieldflash audit verify` names it)", le.Reason)
		}
	}
	return t, true, nil
}

func prevOf(h Head) string {
	if h.Hash == "" {
		return GenesisPrev
	}
	return h.Hash
}
