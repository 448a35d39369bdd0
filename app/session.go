package app

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldflash/fieldflash/assets"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/verify"
)

// Session is one person's work with fieldflash: where state lives, which roots are
// pinned, and whether demo mode is on. Both faces open one and make every verification,
// flash and recovery through it, so the CLI and the GUI trust and remember the same.
type Session struct {
	// Home is where this session's state and journals live: $FIELDFLASH_HOME, or its
	// demo/ directory in demo mode.
	Home string
	// Demo trusts the demo root only (demo bundles, virtual devices only).
	Demo bool
	// Executable is the file a self-update replaces; "" is the running executable.
	Executable string
	state      *DiskState
	roots      []verify.PinnedRoot
	rec        *recorder
}

// OpenSession reads the trust store and the remembered state under Home(). In demo mode
// the demo root is trusted and state and journals are kept apart (Home()/demo), so
// playing with the demo never moves the state that guards real bundles.
func OpenSession(demo bool) (*Session, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	ts, err := OpenTrustStore(home)
	if err != nil {
		return nil, err
	}
	roots, err := ts.Roots()
	if err != nil {
		return nil, err
	}
	// The demo root is always offered: verify trusts it only in demo mode, and outside it
	// says so instead of "not pinned".
	roots = append(roots, DemoRoot())
	work := home
	if demo {
		work = filepath.Join(home, "demo")
	}
	st, err := NewDiskState(work)
	if err != nil {
		return nil, err
	}
	return &Session{Home: work, Demo: demo, state: st, roots: roots, rec: newRecorder(home, work, demo)}, nil
}

// JournalDir is where this session's flash journals live.
func (s *Session) JournalDir() string { return filepath.Join(s.Home, "journal") }

// Verify checks a bundle offline against the session's roots and remembered state.
// opts carries the device facts to check against (hardware, counter, installed
// components); its roots, state and mode are the session's. The error is a *VerifyError
// for a refusal (CodeIO when the file could not be read). The verification is recorded
// in the audit log (and queued as telemetry when the person agreed).
func (s *Session) Verify(path string, opts VerifyOptions) (*Verified, error) {
	opts.Roots = s.roots
	opts.DemoMode = s.Demo
	opts.State = s.state
	start := time.Now()
	v, err := verify.VerifyFile(path, opts)
	s.recordVerification(path, v, err, time.Since(start), opts)
	return v, err
}

// DemoRoot is the root the demo bundle chains to, trusted in demo mode only.
func DemoRoot() verify.PinnedRoot {
	return verify.PinnedRoot{Name: assets.DemoRepository, Root: assets.DemoRoot, Demo: true}
}

// RequireVirtualPort refuses to flash a demo bundle anywhere but onto a virtual device:
// the demo keys are public, so a demo bundle says nothing about what is safe for hardware.
func RequireVirtualPort(port string) error {
	ports, err := transports.List()
	if err != nil {
		return err
	}
	want := resolvePath(port)
	for _, p := range ports {
		if p.Virtual && resolvePath(p.Path) == want {
			return nil
		}
	}
	return fmt.Errorf("--demo flashes only virtual devices (`fieldflash sim`), and %s is not one: demo bundles are signed with public demo keys; use a bundle from your vendor for real hardware", port)
}

// verifyEmbeddedDemo verifies the built-in demo bundle from a temporary copy.
func verifyEmbeddedDemo() (*verify.Verified, error) {
	f, err := os.CreateTemp("", "fieldflash-demo-*.fwb")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(assets.DemoBundle)
	if err := f.Close(); err != nil || werr != nil {
		return nil, fmt.Errorf("demo bundle %s: %v %v", f.Name(), werr, err)
	}
	return verify.VerifyFile(f.Name(), verify.Options{Roots: []verify.PinnedRoot{DemoRoot()}, DemoMode: true})
}

func resolvePath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
