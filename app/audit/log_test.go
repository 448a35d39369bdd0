package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func flashEntry(i int) Entry {
	return Entry{Kind: KindFlash, AppVersion: "1.2.3", Operator: "ana", Bundle: "acme-7.2.fwb",
		Digest: "sha256:" + strings.Repeat("ab", 32), Repository: "acme", Target: "gw/app.bin",
		Hardware: "acme-gw-r2", Device: fmt.Sprintf("%032x", i), From: "7.1.0", To: "7.2.0",
		Outcome: OutcomeOK, Result: "confirmed", DurationMS: int64(1000 + i)}
}

func writeLog(t testing.TB, n int) (string, []Entry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.NoSync = true
	var out []Entry
	for i := range n {
		e, err := l.Append(flashEntry(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, out
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendedEntriesChainAndSurviveReopening(t *testing.T) {
	path, written := writeLog(t, 20)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Head(); h.Seq != 20 || h.Hash != written[19].Hash {
		t.Fatalf("head after reopening = %v, want entry 20 %s", h, written[19].Hash)
	}
	e, err := l.Append(Entry{Kind: KindTrustChange, Outcome: OutcomeOK, Detail: "pinned acme root v3"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if e.Seq != 21 || e.Prev != written[19].Hash {
		t.Fatalf("appended after reopening: seq %d prev %s", e.Seq, e.Prev)
	}
	entries, rep, err := ReadFile(path, []Anchor{{Head: Head{Seq: 21, Hash: e.Hash}}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries != 21 || rep.Anchored != 1 || len(entries) != 21 {
		t.Fatalf("report %+v problem %v, %d entries", rep, rep.Problem, len(entries))
	}
	if entries[0].Prev != GenesisPrev || entries[3].Device != written[3].Device || entries[20].Detail != "pinned acme root v3" {
		t.Fatalf("entries read back differ: %+v", entries[3])
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v, want 0600", st.Mode().Perm())
	}
}

func TestVerifyNamesTheFirstBadEntry(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(ls [][]byte) [][]byte
		seq    uint64
		reason string
	}{
		{"an edited entry", func(ls [][]byte) [][]byte {
			ls[4] = bytes.Replace(ls[4], []byte(`"outcome":"ok"`), []byte(`"outcome":"no"`), 1)
			return ls
		}, 5, "it was edited"},
		{"an edited entry whose hash was recomputed", func(ls [][]byte) [][]byte {
			e, _ := DecodeLine(bytes.TrimSuffix(ls[4], []byte("\n")))
			e.To = "6.6.6"
			line, _, _ := encode(*e)
			ls[4] = append(line, '\n')
			return ls
		}, 6, "does not match entry 5"},
		{"a removed entry", func(ls [][]byte) [][]byte {
			return append(ls[:6:6], ls[7:]...)
		}, 8, "entry 7 is missing"},
		{"several removed entries", func(ls [][]byte) [][]byte {
			return append(ls[:2:2], ls[5:]...)
		}, 6, "entries 3 to 5 are missing"},
		{"the first entry removed", func(ls [][]byte) [][]byte { return ls[1:] }, 2, "entry 1 is missing"},
		{"an inserted copy", func(ls [][]byte) [][]byte {
			out := append([][]byte{}, ls[:5]...)
			out = append(out, ls[2])
			return append(out, ls[5:]...)
		}, 3, "inserted or moved"},
		{"two entries swapped", func(ls [][]byte) [][]byte {
			ls[3], ls[4] = ls[4], ls[3]
			return ls
		}, 5, "entry 4 is missing"},
		{"a line of garbage", func(ls [][]byte) [][]byte {
			out := append([][]byte{}, ls[:5]...)
			out = append(out, []byte("hello\n"))
			return append(out, ls[5:]...)
		}, 0, "not an entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, _ := writeLog(t, 10)
			writeLines(t, path, c.tamper(lines(t, path)))
			rep, err := VerifyFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("verify passed a log with %s", c.name)
			}
			if rep.Problem.Seq != c.seq || !strings.Contains(rep.Problem.Reason, c.reason) {
				t.Fatalf("problem = %v (seq %d), want entry %d with %q", rep.Problem, rep.Problem.Seq, c.seq, c.reason)
			}
		})
	}
}

func TestAnAnchorCatchesACutTail(t *testing.T) {
	path, written := writeLog(t, 10)
	anchor := Anchor{Head: Head{Seq: 9, Hash: written[8].Hash, Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}, Source: "sent with telemetry"}
	ls := lines(t, path)
	writeLines(t, path, ls[:7]) // entries 8.. cut off: the chain itself still holds
	rep, _ := VerifyFile(path, nil)
	if !rep.OK() {
		t.Fatalf("without an anchor a cut tail is a shorter valid log, got %v", rep.Problem)
	}
	rep, _ = VerifyFile(path, []Anchor{anchor})
	if rep.OK() || !strings.Contains(rep.Problem.Reason, "the log ends at entry 7, but entry 9 was anchored (sent with telemetry) on 2026-05-01") {
		t.Fatalf("cut tail with anchor: %v", rep.Problem)
	}
	// An anchor that names a rewritten entry.
	path2, _ := writeLog(t, 10)
	rep, _ = VerifyFile(path2, []Anchor{anchor})
	if rep.OK() || rep.Problem.Seq != 9 || !strings.Contains(rep.Problem.Reason, "differs from the anchor") {
		t.Fatalf("rewritten log against anchor: %v", rep.Problem)
	}
}

// A power cut can leave any prefix of the last line on disk. Each such prefix must be
// found at the next open, kept, and named by a torn-record entry; the entries before it
// stay, and the log goes on.
func TestPowerCutAtEveryByteOfTheLastLineIsNotedNeverDropped(t *testing.T) {
	path, written := writeLog(t, 5)
	full, _ := os.ReadFile(path)
	ls := lines(t, path)
	start := len(full) - len(ls[4])
	for cut := start + 1; cut < len(full); cut++ {
		// Every byte near both ends of the line (the hash and the newline), every 7th in
		// between: each cut costs a few fsyncs.
		if cut-start > 24 && len(full)-cut > 80 && cut%7 != 0 {
			continue
		}
		p := filepath.Join(t.TempDir(), "audit.log")
		os.WriteFile(p, full[:cut], 0o600)
		rep, _ := VerifyFile(p, nil)
		if cut < len(full)-1 && (rep.TornTail == nil || !rep.OK()) {
			t.Fatalf("cut at %d: verify before reopening: %+v problem %v, want the torn tail reported", cut, rep, rep.Problem)
		}
		l, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fixes := l.Fixes()
		e, err := l.Append(flashEntry(99))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		entries, rep, _ := ReadFile(p, nil)
		if !rep.OK() {
			t.Fatalf("cut at %d: after the fix the log does not verify: %v", cut, rep.Problem)
		}
		if cut == len(full)-1 {
			// Only the newline was lost: the entry is whole and is kept.
			if len(fixes) != 1 || fixes[0].Entry.Seq != 0 || rep.Entries != 6 || entries[4].Hash != written[4].Hash {
				t.Fatalf("cut before the newline: fixes %+v, %d entries", fixes, rep.Entries)
			}
			continue
		}
		if len(fixes) != 1 || fixes[0].Entry.Kind != KindTornRecord || !strings.Contains(fixes[0].Text, "after entry 4 was torn") {
			t.Fatalf("cut at %d: fixes %+v", cut, fixes)
		}
		if len(rep.Torn) != 1 || rep.Torn[0].After != 4 || rep.Torn[0].Seq != 5 || rep.Torn[0].Length != int64(cut-start+1) {
			t.Fatalf("cut at %d: torn notes %+v", cut, rep.Torn)
		}
		if rep.Entries != 6 || e.Seq != 6 || entries[3].Hash != written[3].Hash {
			t.Fatalf("cut at %d: %d entries, appended seq %d", cut, rep.Entries, e.Seq)
		}
		data, _ := os.ReadFile(p)
		if !bytes.Contains(data, full[start:cut]) {
			t.Fatalf("cut at %d: the torn bytes were not kept", cut)
		}
	}
}

func TestATornRecordEntryMustAccountForExactlyItsBytes(t *testing.T) {
	path, _ := writeLog(t, 3)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append(data, []byte(`{"seq":4,"prev":"00`)...), 0o600)
	l, _ := Open(path)
	l.Close()
	data, _ = os.ReadFile(path)
	// Someone edits the torn bytes after the fact.
	tampered := bytes.Replace(data, []byte(`{"seq":4,"prev":"00`), []byte(`{"seq":4,"prev":"11`), 1)
	os.WriteFile(path, tampered, 0o600)
	rep, _ := VerifyFile(path, nil)
	if rep.OK() || rep.Problem.Line != 4 {
		t.Fatalf("edited torn bytes verified: %+v %v", rep, rep.Problem)
	}
	// And a torn-record entry with nothing before it is a removal.
	path2, _ := writeLog(t, 3)
	d2, _ := os.ReadFile(path2)
	os.WriteFile(path2, append(d2, []byte("garbage")...), 0o600)
	l, _ = Open(path2)
	l.Close()
	ls := lines(t, path2)
	writeLines(t, path2, append(ls[:3:3], ls[4:]...))
	rep, _ = VerifyFile(path2, nil)
	if rep.OK() || rep.Problem.Seq != 4 || !strings.Contains(rep.Problem.Reason, "no torn bytes come before it") {
		t.Fatalf("torn-record with its bytes removed: %v", rep.Problem)
	}
}

func TestTwoWritersOnOneLogNeverInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, _ := Open(path)
	b, _ := Open(path) // a second process's open file description
	a.NoSync, b.NoSync = true, true
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if _, err := l.Append(flashEntry(i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	a.Close()
	b.Close()
	rep, _ := VerifyFile(path, nil)
	if !rep.OK() || rep.Entries != 200 {
		t.Fatalf("two writers: %d entries, problem %v", rep.Entries, rep.Problem)
	}
}

func TestALongLineIsOneBadSpan(t *testing.T) {
	path, _ := writeLog(t, 2)
	data, _ := os.ReadFile(path)
	junk := bytes.Repeat([]byte{0}, MaxLineBytes*3) // a crash that extended the file with zeros
	os.WriteFile(path, append(data, junk...), 0o600)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Fixes()) != 1 {
		t.Fatalf("fixes %+v", l.Fixes())
	}
	l.Close()
	rep, _ := VerifyFile(path, nil)
	if !rep.OK() || len(rep.Torn) != 1 || rep.Torn[0].Length != int64(len(junk)+1) {
		t.Fatalf("zeros after a crash: %+v %v", rep, rep.Problem)
	}
}

// An edited last entry looks like nothing a crash leaves (a crash leaves a prefix of a
// line): it must be named as edited, and never noted away as torn.
func TestAnEditedLastEntryIsNotMistakenForATornOne(t *testing.T) {
	path, _ := writeLog(t, 3)
	ls := lines(t, path)
	ls[2] = bytes.Replace(ls[2], []byte(`"to":"7.2.0"`), []byte(`"to":"7.2.1"`), 1)
	writeLines(t, path, ls)
	rep, _ := VerifyFile(path, nil)
	if rep.OK() || rep.Problem.Seq != 3 || !strings.Contains(rep.Problem.Reason, "it was edited") || rep.TornTail != nil {
		t.Fatalf("edited last entry: %+v %v", rep, rep.Problem)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "was edited") {
		t.Fatalf("open over an edited last entry: %v; want a refusal to write", err)
	}
	// Without its newline too.
	writeLines(t, path, append(ls[:2:2], bytes.TrimSuffix(ls[2], []byte("\n"))))
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "was edited") {
		t.Fatalf("open over an edited unterminated last entry: %v", err)
	}
}
