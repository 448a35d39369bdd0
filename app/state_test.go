package app

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
)

func TestStateRemembersNewestMetadataAcrossRuns(t *testing.T) {
	home := t.TempDir()
	s, err := NewDiskState(home)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load("acme"); err != nil || got != nil {
		t.Fatalf("fresh state: got %v, %v; want nothing", got, err)
	}
	saved := &verify.Saved{Root: []byte("{\"r\": 1}\n"), Timestamp: []byte("ts"), Snapshot: []byte("snap"),
		Targets: map[string][]byte{"targets": []byte("t"), "acme-gw": []byte("d")}}
	if err := s.Save("acme", saved); err != nil {
		t.Fatal(err)
	}
	// A second process opens the same home.
	s2, err := NewDiskState(home)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load("acme")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Root, saved.Root) || !bytes.Equal(got.Targets["acme-gw"], []byte("d")) || string(got.Timestamp) != "ts" {
		t.Fatalf("loaded %+v, want the saved bytes exactly", got)
	}
	now := time.Date(2027, 3, 4, 5, 6, 7, 8, time.UTC)
	if err := s2.SaveNewestTime(now); err != nil {
		t.Fatal(err)
	}
	if nt, err := s.NewestTime(); err != nil || !nt.Equal(now) {
		t.Fatalf("newest time %v, %v; want %v", nt, err, now)
	}
}

func TestStateKeepsOddRepositoryNamesInsideItsDirectory(t *testing.T) {
	home := t.TempDir()
	s, _ := NewDiskState(home)
	if err := s.Save("../../etc/passwd", &verify.Saved{Root: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(home, "state"))
	if len(entries) != 1 || filepath.Ext(entries[0].Name()) != ".json" || entries[0].Name()[:2] != "x-" {
		t.Fatalf("state dir holds %v; want one encoded file", entries)
	}
	if _, err := os.Stat(filepath.Join(home, "..", "etc")); err == nil {
		t.Fatal("a repository name escaped the state directory")
	}
}

func TestDamagedStateSaysHowToRecover(t *testing.T) {
	home := t.TempDir()
	s, _ := NewDiskState(home)
	os.WriteFile(filepath.Join(home, "state", "acme.json"), []byte("{not json"), 0o600)
	_, err := s.Load("acme")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("move it away")) {
		t.Fatalf("err = %v; want a damaged-state error with the next step", err)
	}
}

func TestStateLockMakesVerificationsTakeTurns(t *testing.T) {
	home := t.TempDir()
	a, _ := NewDiskState(home)
	b, _ := NewDiskState(home) // another process's view of the same home
	var _ verify.Locker = a
	unlock, err := a.Lock()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := b.Lock()
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second holder got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the lock was not handed over after unlock")
	}
}

func TestWindowsDeviceNamesAreEncoded(t *testing.T) {
	for _, name := range []string{"CON", "nul", "com1", "LPT9.vendor"} {
		if got := fileName(name); got[:2] != "x-" {
			t.Errorf("fileName(%q) = %q; want it encoded", name, got)
		}
	}
	if got := fileName("acme"); got != "acme.json" {
		t.Errorf("fileName(acme) = %q", got)
	}
}
