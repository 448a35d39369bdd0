//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/fieldflash/fieldflash/verify/release"
)

// detachedFromTerminal starts the child in its own session, without a controlling
// terminal, as a script under cron or CI runs it.
func detachedFromTerminal() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// terminal is a pseudo-terminal the tool runs on, as a release engineer's shell.
type terminal struct {
	t    *testing.T
	f    *os.File
	cmd  *exec.Cmd
	seen chan string
	buf  bytes.Buffer
}

func onTerminal(t *testing.T, dir string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = withoutPassphrase()
	f, err := pty.Start(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	term := &terminal{t: t, f: f, cmd: cmd, seen: make(chan string, 64)}
	go func() {
		b := make([]byte, 256)
		for {
			n, err := f.Read(b)
			if n > 0 {
				term.seen <- string(b[:n])
			}
			if err != nil {
				close(term.seen)
				return
			}
		}
	}()
	t.Cleanup(func() { f.Close() })
	return term
}

// expect waits until the terminal has shown want.
func (term *terminal) expect(want string) {
	term.t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(term.buf.String(), want) {
		select {
		case s, ok := <-term.seen:
			if !ok {
				term.t.Fatalf("terminal closed before %q; it showed %q", want, term.buf.String())
			}
			term.buf.WriteString(s)
		case <-deadline:
			term.t.Fatalf("waited for %q; the terminal shows %q", want, term.buf.String())
		}
	}
	term.buf.Reset()
}

func (term *terminal) typeLine(s string) {
	term.t.Helper()
	if _, err := term.f.Write([]byte(s + "\r")); err != nil {
		term.t.Fatal(err)
	}
}

func (term *terminal) exitCode() int {
	term.t.Helper()
	for range term.seen {
	}
	err := term.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		term.t.Fatal(err)
	}
	return 0
}

func TestKeygenAsksForThePassphraseTwiceOnTheTerminal(t *testing.T) {
	dir := t.TempDir()
	term := onTerminal(t, dir, "keygen", "--out", "keys/typed")
	term.expect("Passphrase for keys/typed.key: ")
	term.typeLine("typed at the desk")
	term.expect("Same passphrase again: ")
	term.typeLine("typed at the desk")
	if code := term.exitCode(); code != 0 {
		t.Fatalf("keygen on a terminal: exit %d", code)
	}
	data, err := os.ReadFile(filepath.Join(dir, "keys", "typed.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.DecodePrivateKey(data, []byte("typed at the desk")); err != nil {
		t.Fatalf("the key does not open with the typed passphrase: %v", err)
	}

	term = onTerminal(t, dir, "keygen", "--out", "keys/typo")
	term.expect("Passphrase for keys/typo.key: ")
	term.typeLine("one thing")
	term.expect("Same passphrase again: ")
	term.typeLine("another")
	if code := term.exitCode(); code != 1 {
		t.Fatalf("keygen with two different passphrases: exit %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "typo.key")); err == nil {
		t.Fatal("a key was written although the passphrases differed")
	}

	term = onTerminal(t, dir, "keygen", "--out", "keys/empty")
	term.expect("Passphrase for keys/empty.key: ")
	term.typeLine("")
	if code := term.exitCode(); code != 1 {
		t.Fatalf("keygen with an empty passphrase: exit %d, want 1", code)
	}
}
