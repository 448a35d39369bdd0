package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeLine: any bytes as one line of the log. A line that decodes must encode back
// to exactly itself (the hash covers the bytes, so an accepted line is one this program
// could have written).
func FuzzDecodeLine(f *testing.F) {
	line, _, _ := encode(Entry{Seq: 1, Prev: GenesisPrev, Kind: KindFlash, Outcome: OutcomeOK, Hardware: "gw"})
	f.Add(line)
	f.Add([]byte(`{"seq":1,"hash":"` + GenesisPrev + `"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeLine(b)
		if err != nil {
			return
		}
		if e.Seq == 0 || len(e.Hash) != 64 || len(e.Prev) != 64 {
			t.Fatalf("accepted %q as %+v", b, e)
		}
	})
}

// FuzzVerify: any file as a log, and any file after a log. Verify must not panic, and a
// log it calls intact must stay intact when reopened and appended to.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.log")
	l, _ := Open(path)
	l.NoSync = true
	for i := range 3 {
		l.Append(flashEntry(i))
	}
	l.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(append(append([]byte{}, seed...), "{\"seq\":4"...))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Verify(bytes.NewReader(b), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			return
		}
		p := filepath.Join(t.TempDir(), "a.log")
		os.WriteFile(p, b, 0o600)
		l, err := Open(p)
		if err != nil {
			t.Fatalf("an intact log could not be opened: %v", err)
		}
		l.NoSync = true
		if _, err := l.Append(Entry{Kind: KindFlash, Outcome: OutcomeOK}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		after, _ := VerifyFile(p, nil)
		if !after.OK() || after.Entries != rep.Entries+1+len(after.Torn)-len(rep.Torn) {
			t.Fatalf("intact log (%d entries, torn tail %v) broke after an append: %v, %d entries", rep.Entries, rep.TornTail, after.Problem, after.Entries)
		}
	})
}
