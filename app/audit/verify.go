package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Anchor is a head seen outside the log (printed, exported, sent with telemetry): the log
// must still hold entry Seq with Hash. Source says where it was seen, for the message.
type Anchor struct {
	Head
	Source string `json:"source,omitempty"`
}

// Report is what a verification found.
type Report struct {
	Entries int  `json:"entries"`
	Head    Head `json:"head"` // the newest intact entry before any problem
	// Problem is the first bad entry; nil when the chain holds from the first entry to
	// the last and agrees with every anchor.
	Problem *Problem `json:"problem,omitempty"`
	// Torn are crash-torn records the log noted itself (torn-record entries): not
	// tampering, but records that never completed.
	Torn []TornNote `json:"torn,omitempty"`
	// TornTail is a torn last record not noted yet: fieldflash notes it at its next
	// write to the log.
	TornTail *Torn `json:"torn_tail,omitempty"`
	// Unterminated: the last entry is whole but its line end is missing.
	Unterminated bool `json:"unterminated,omitempty"`
	// Anchored counts the anchors that matched.
	Anchored int `json:"anchored"`
}

// OK says whether the log is intact.
func (r *Report) OK() bool { return r.Problem == nil }

// TornNote is a torn-record entry and the span it accounts for.
type TornNote struct {
	Seq   uint64 `json:"seq"` // the torn-record entry
	After uint64 `json:"after"`
	Torn
}

// Problem names the first bad entry and why.
type Problem struct {
	// Seq is the entry's own number where it could be read, else 0.
	Seq uint64 `json:"seq,omitempty"`
	// Line is the line of the file, counting from 1.
	Line   int64 `json:"line"`
	Offset int64 `json:"offset"`
	// After is the last good entry before it.
	After  uint64 `json:"after"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string {
	what := fmt.Sprintf("line %d", p.Line)
	if p.Seq != 0 {
		what = fmt.Sprintf("entry %d (line %d)", p.Seq, p.Line)
	}
	return fmt.Sprintf("%s: %s", what, p.Reason)
}

// VerifyFile checks the log at path (see Verify).
func VerifyFile(path string, anchors []Anchor) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Verify(f, anchors)
}

// Verify reads a whole log (or an export of one) and checks every entry's hash, the
// sequence from 1 without gaps or repeats, every entry's link to the one before, that
// every torn span is accounted for by the torn-record entry right after it, and that
// the log still holds each anchor. It stops at the first bad entry. The error is for
// reading only; what is wrong with the log is in Report.Problem.
func Verify(r io.Reader, anchors []Anchor) (*Report, error) {
	v := newVerifier(anchors)
	err := scan(r, checkLine, func(e *Entry, line []byte, lerr error) bool {
		return v.line(e, line, lerr)
	}, &v.pos)
	if err != nil {
		return nil, err
	}
	return v.finish(), nil
}

// Position is where Scan is in the file.
type Position struct {
	Line   int64 // of the line passed to fn, from 1
	Offset int64 // of its first byte
	// Terminated says the line ended with a newline (the last line may not).
	Terminated bool
}

// Scan calls fn for every line of r: the decoded entry, or the line's error (the line
// is passed without its newline; a line longer than MaxLineBytes is passed cut, with an
// error). pos, if not nil, is updated before each call. fn returns false to stop.
func Scan(r io.Reader, fn func(e *Entry, line []byte, err error) bool, pos *Position) error {
	return scan(r, DecodeLine, fn, pos)
}

func scan(r io.Reader, check func([]byte) (*Entry, error), fn func(e *Entry, line []byte, err error) bool, pos *Position) error {
	if pos == nil {
		pos = &Position{}
	}
	br := bufio.NewReaderSize(r, MaxLineBytes+1)
	var off int64
	var lineNo int64
	for {
		line, err := br.ReadSlice('\n')
		long := false
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any entry: one bad line, kept whole so a torn span's hash
			// covers every byte.
			long = true
			line = append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				var more []byte
				more, err = br.ReadSlice('\n')
				line = append(line, more...)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		n := int64(len(line))
		if n == 0 {
			return nil
		}
		lineNo++
		term := line[len(line)-1] == '\n'
		content := line
		if term {
			content = content[:len(content)-1]
		}
		*pos = Position{Line: lineNo, Offset: off, Terminated: term}
		var e *Entry
		var lerr error
		if long {
			lerr = &LineError{Reason: fmt.Sprintf("a line of %d bytes, longer than any entry (%d)", len(content), MaxLineBytes)}
		} else {
			e, lerr = check(content)
		}
		if !fn(e, content, lerr) {
			return nil
		}
		off += n
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

type verifier struct {
	pos     Position
	anchors map[uint64]Anchor
	rep     Report
	prev    string
	next    uint64
	// a span of lines that are no intact entry, waiting for its torn-record entry
	span *spanState
	// the entry being checked when the torn tail turns out to be the last thing
	lastUnterminated bool
}

type spanState struct {
	offset, length int64
	line           int64
	after          uint64
	reason         error
	seq            uint64
	sum            hash.Hash
}

func newVerifier(anchors []Anchor) *verifier {
	v := &verifier{anchors: map[uint64]Anchor{}, prev: GenesisPrev, next: 1}
	for _, a := range anchors {
		v.anchors[a.Seq] = a
	}
	return v
}

func (v *verifier) fail(seq uint64, line, off int64, format string, a ...any) bool {
	v.rep.Problem = &Problem{Seq: seq, Line: line, Offset: off, After: v.next - 1, Reason: fmt.Sprintf(format, a...)}
	return false
}

func (v *verifier) line(e *Entry, content []byte, lerr error) bool {
	p := v.pos
	n := int64(len(content))
	if p.Terminated {
		n++
	}
	if lerr != nil {
		var le *LineError
		if errors.As(lerr, &le) && le.Edited {
			// A whole entry whose hash fails: changed by someone, wherever it is.
			after := v.next - 1
			if v.span != nil {
				after = v.span.after
			}
			v.rep.Problem = &Problem{Seq: guessSeq(content), Line: p.Line, Offset: p.Offset, After: after, Reason: describeLineError(lerr)}
			return false
		}
		if v.span == nil {
			v.span = &spanState{offset: p.Offset, line: p.Line, after: v.next - 1, reason: lerr, seq: guessSeq(content), sum: sha256.New()}
		}
		v.span.sum.Write(content)
		if p.Terminated {
			v.span.sum.Write([]byte{'\n'})
		}
		v.span.length += n
		return true
	}
	if s := v.span; s != nil {
		sum := hex.EncodeToString(s.sum.Sum(nil))
		if e.Kind != KindTornRecord || e.Torn == nil || e.Torn.Offset != s.offset || e.Torn.Length != s.length || e.Torn.SHA256 != sum {
			what := "it is not an intact entry: "
			if s.seq != 0 {
				what = ""
			}
			v.rep.Problem = &Problem{Seq: s.seq, Line: s.line, Offset: s.offset, After: s.after,
				Reason: what + describeLineError(s.reason)}
			return false
		}
		v.rep.Torn = append(v.rep.Torn, TornNote{Seq: e.Seq, After: s.after, Torn: *e.Torn})
		v.span = nil
	} else if e.Kind == KindTornRecord {
		return v.fail(e.Seq, p.Line, p.Offset, "it is a torn-record entry but no torn bytes come before it: an entry was removed in front of it")
	}
	switch {
	case e.Seq > v.next:
		if v.next == e.Seq-1 {
			return v.fail(e.Seq, p.Line, p.Offset, "entry %d is missing before it (removed)", v.next)
		}
		return v.fail(e.Seq, p.Line, p.Offset, "entries %d to %d are missing before it (removed)", v.next, e.Seq-1)
	case e.Seq < v.next:
		return v.fail(e.Seq, p.Line, p.Offset, "it comes after entry %d: inserted or moved out of order", v.next-1)
	}
	if e.Prev != v.prev {
		if v.next == 1 {
			return v.fail(e.Seq, p.Line, p.Offset, "the first entry does not start the chain: entries before it were removed or it was replaced")
		}
		return v.fail(e.Seq, p.Line, p.Offset, "its link does not match entry %d: an entry was replaced or inserted here and the following renumbered", v.next-1)
	}
	if a, ok := v.anchors[e.Seq]; ok {
		if a.Hash != e.Hash {
			return v.fail(e.Seq, p.Line, p.Offset, "it differs from the anchor %s: the log was rewritten from here on", describeAnchor(a))
		}
		v.rep.Anchored++
	}
	v.rep.Entries++
	v.rep.Head = Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
	v.prev = e.Hash
	v.next = e.Seq + 1
	v.lastUnterminated = !p.Terminated
	return true
}

func (v *verifier) finish() *Report {
	if v.rep.Problem != nil {
		return &v.rep
	}
	if s := v.span; s != nil {
		v.rep.TornTail = &Torn{Offset: s.offset, Length: s.length, SHA256: hex.EncodeToString(s.sum.Sum(nil))}
	} else {
		v.rep.Unterminated = v.lastUnterminated
	}
	// The highest anchor beyond the end names the cut.
	var cut *Anchor
	for _, a := range v.anchors {
		if a.Seq >= v.next && (cut == nil || a.Seq > cut.Seq) {
			a := a
			cut = &a
		}
	}
	if cut != nil {
		v.rep.Problem = &Problem{Seq: v.next, After: v.next - 1, Offset: -1,
			Reason: fmt.Sprintf("the log ends at entry %d, but %s: entries %d to %d or more were cut off the end", v.next-1, describeAnchor(*cut), v.next, cut.Seq)}
	}
	return &v.rep
}

func describeAnchor(a Anchor) string {
	s := fmt.Sprintf("entry %d was anchored", a.Seq)
	if a.Source != "" {
		s += " (" + a.Source + ")"
	}
	if !a.Time.IsZero() {
		s += " on " + a.Time.UTC().Format("2006-01-02 15:04 MST")
	}
	return s
}

func describeLineError(err error) string {
	var le *LineError
	if errors.As(err, &le) && le.Reason == "its hash does not match its contents" {
		return "its hash does not match its contents: it was edited"
	}
	return err.Error()
}

// guessSeq reads the seq of a line that is no intact entry, to name it.
func guessSeq(line []byte) uint64 {
	var s struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(line, &s) == nil {
		return s.Seq
	}
	return 0
}

// ReadFile reads every intact entry of the log at path, oldest first, and verifies it
// against anchors. Entries after a problem are still returned (a list shows them); the
// Report says where the chain broke. A missing file is an empty log.
func ReadFile(path string, anchors []Anchor) ([]Entry, *Report, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &Report{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var entries []Entry
	v := newVerifier(anchors)
	checking := true
	err = Scan(f, func(e *Entry, line []byte, lerr error) bool {
		if checking {
			checking = v.line(e, line, lerr)
		}
		if e != nil {
			entries = append(entries, *e)
		}
		return true
	}, &v.pos)
	if err != nil {
		return nil, nil, err
	}
	return entries, v.finish(), nil
}

// ReadRecent reads the intact entries in the last maxBytes of the log at path, oldest
// first, without verifying the chain: what the anomaly rules need (the latest updates of
// a model) at a cost that does not grow with the log. A missing file has none.
func ReadRecent(path string, maxBytes int64) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	base := max(st.Size()-maxBytes, 0)
	if _, err := f.Seek(base, io.SeekStart); err != nil {
		return nil, err
	}
	var out []Entry
	first := base > 0 // the first line of a window inside the file may be cut
	err = Scan(f, func(e *Entry, _ []byte, _ error) bool {
		if first {
			first = false
			return true
		}
		if e != nil {
			out = append(out, *e)
		}
		return true
	}, nil)
	return out, err
}
