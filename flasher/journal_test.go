package flasher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJournalWritesOnStepChangeAndEveryChunkOfBytes(t *testing.T) {
	dir := t.TempDir()
	key := JournalKey{Device: "acme-gw-r2/SN0042", ImageSHA256: strings.Repeat("ab", 32)}
	j, err := OpenJournal(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if j.Load() != nil {
		t.Fatal("a new journal has a previous entry")
	}
	j.Every = 1000
	onDisk := func() JournalEntry {
		t.Helper()
		b, err := os.ReadFile(j.Path())
		if err != nil {
			t.Fatal(err)
		}
		var e JournalEntry
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(j.Record(StepTransfer, 0))
	must(j.Record(StepTransfer, 600))
	if e := onDisk(); e.Step != StepTransfer || e.Acked != 0 {
		t.Fatalf("600 bytes in: journal says %+v, want no write yet", e)
	}
	must(j.Record(StepTransfer, 1200))
	if e := onDisk(); e.Acked != 1200 {
		t.Fatalf("1200 bytes in: journal says %d", e.Acked)
	}
	must(j.Record(StepCheck, 1300))
	if e := onDisk(); e.Step != StepCheck || e.Acked != 1300 {
		t.Fatalf("step change not written: %+v", e)
	}
	// Another process (the app started again) finds the entry.
	j2, err := OpenJournal(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if e := j2.Load(); e == nil || e.Step != StepCheck || e.Key != key {
		t.Fatalf("reloaded %+v", e)
	}
	must(j2.Finish(&Outcome{Result: ResultConfirmed}))
	if e := onDisk(); !e.Finished || e.Outcome.Result != ResultConfirmed {
		t.Fatalf("finished journal %+v", e)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".journal-*"))
	if len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
}

func TestJournalNameStaysInsideDirectory(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, JournalKey{Device: "../../etc/passwd", ImageSHA256: "00"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(j.Path()) != dir || strings.HasPrefix(filepath.Base(j.Path()), ".") {
		t.Fatalf("journal at %s", j.Path())
	}
	other, _ := OpenJournal(dir, JournalKey{Device: "../../etc/passwd", ImageSHA256: "01"})
	if other.Path() == j.Path() {
		t.Fatal("two images share a journal")
	}
}

// FuzzOpenJournal: a journal file is bytes from disk that a crash, a full disk or a user
// may have mangled; opening it must never fail or panic, only start over.
func FuzzOpenJournal(f *testing.F) {
	f.Add([]byte(`{"format":1,"key":{"device":"d","image_sha256":"00"},"step":"probe","acked":5}`))
	f.Add([]byte(`{"format":1,"key":{"device":"d","image_sha256":"00"},"step":"transfer","acked":-1,"outcome":{"result":"x"}}`))
	f.Add([]byte("\x00\xff{"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := t.TempDir()
		key := JournalKey{Device: "d", ImageSHA256: "00"}
		if err := os.WriteFile(filepath.Join(dir, journalName(key)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := OpenJournal(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		if e := j.Load(); e != nil && e.Key != key {
			t.Fatalf("loaded a foreign key %+v", e.Key)
		}
	})
}
