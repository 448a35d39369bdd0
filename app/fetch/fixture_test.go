package fetch

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

// The repository in these tests is made by fieldflash-release's own code (verify/release,
// what `fieldflash-release publish` runs) and served over real HTTP on loopback; the
// faulty mirror is a second loopback server in front of the same files.

// testKey is an ed25519 key from a fixed seed: test-only, never a real key.
func testKey(t testing.TB, name string) *release.SigningKey {
	t.Helper()
	seed := sha256.Sum256([]byte("fieldflash-fetch-test-" + name))
	k, err := release.NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type vendor struct {
	t                                  testing.TB
	repo                               *release.Repo
	root, targets, snapshot, timestamp *release.SigningKey
	files                              string // where payloads are made
}

func newVendor(t testing.TB) *vendor {
	t.Helper()
	v := &vendor{t: t, root: testKey(t, "root"), targets: testKey(t, "targets"), snapshot: testKey(t, "snapshot"), timestamp: testKey(t, "timestamp"), files: t.TempDir()}
	r, err := release.Init(filepath.Join(t.TempDir(), "acme"), release.InitOptions{
		Name:      "acme",
		Root:      release.RoleKeys{Keys: pubs(v.root), Threshold: 1},
		Targets:   release.RoleKeys{Keys: pubs(v.targets), Threshold: 1},
		Snapshot:  release.RoleKeys{Keys: pubs(v.snapshot), Threshold: 1},
		Timestamp: release.RoleKeys{Keys: pubs(v.timestamp), Threshold: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	v.repo = r
	v.must(r.Sign("root", v.root))
	return v
}

func pubs(keys ...*release.SigningKey) []*metadata.Key {
	var out []*metadata.Key
	for _, k := range keys {
		out = append(out, k.Public())
	}
	return out
}

func (v *vendor) must(err error) {
	v.t.Helper()
	if err != nil {
		v.t.Fatal(err)
	}
}

// payload makes size deterministic pseudo-random bytes.
func payload(seed string, size int) []byte {
	data := make([]byte, size)
	rand.NewChaCha8(sha256.Sum256([]byte(seed))).Read(data)
	return data
}

func meta(hw, component, version string, counter uint64) verify.TargetMeta {
	return verify.TargetMeta{HardwareIDs: []string{hw}, Version: version, ReleaseCounter: counter, Component: component}
}

// add lists a target (signed by targets) and returns its bytes.
func (v *vendor) add(path string, data []byte, m verify.TargetMeta) []byte {
	v.t.Helper()
	file := filepath.Join(v.files, strings.ReplaceAll(path, "/", "_"))
	v.must(os.WriteFile(file, data, 0o644))
	_, err := v.repo.AddTarget(release.NewTarget{Path: path, File: file, Meta: m})
	v.must(err)
	return data
}

func (v *vendor) publish(opts ...func(*release.PublishOptions)) {
	v.t.Helper()
	v.must(v.repo.Sign("targets", v.targets))
	o := release.PublishOptions{SnapshotKeys: []*release.SigningKey{v.snapshot}, TimestampKeys: []*release.SigningKey{v.timestamp}}
	for _, f := range opts {
		f(&o)
	}
	v.must(v.repo.Publish(o))
}

func (v *vendor) rootJSON() []byte {
	b, err := os.ReadFile(filepath.Join(v.repo.Dir, "metadata", "1.root.json"))
	v.must(err)
	return b
}

func (v *vendor) file(rel string) []byte {
	b, err := os.ReadFile(filepath.Join(v.repo.Dir, rel))
	v.must(err)
	return b
}

// mirror serves the vendor's repository directory, with faults on demand.
type mirror struct {
	*httptest.Server
	files http.Handler
	mu    sync.Mutex
	// fault, when set, may answer a request itself (returning true).
	fault func(w http.ResponseWriter, r *http.Request) bool
	log   []string // "PATH RANGE" of each request
	// served counts the body bytes sent per path.
	served map[string]int64
}

func newMirror(t testing.TB, dir string) *mirror {
	m := &mirror{files: http.FileServer(http.Dir(dir)), served: map[string]int64{}}
	m.Server = httptest.NewServer(m)
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.log = append(m.log, r.URL.Path+" "+r.Header.Get("Range"))
	f := m.fault
	m.mu.Unlock()
	cw := &countingWriter{ResponseWriter: w}
	defer func() {
		m.mu.Lock()
		m.served[r.URL.Path] += cw.n
		m.mu.Unlock()
	}()
	if f != nil && f(cw, r) {
		return
	}
	m.files.ServeHTTP(cw, r)
}

func (m *mirror) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

func (m *mirror) requests(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, l := range m.log {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (m *mirror) bytesServed(path string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.served[path]
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// laptop is a technician's machine: its own $FIELDFLASH_HOME with the vendor's root
// pinned. Its trusted state is a verify.MemoryState: package app's DiskState sits above
// this package (app imports fetch), and verify's own tests cover both.
type laptop struct {
	t      testing.TB
	home   string
	roots  []verify.PinnedRoot
	state  *verify.MemoryState
	now    func() time.Time
	events []Event
	mu     sync.Mutex
}

func newLaptop(t testing.TB, v *vendor, mirrors ...string) *laptop {
	t.Helper()
	l := &laptop{t: t, home: t.TempDir(), now: time.Now, state: verify.NewMemoryState()}
	l.roots = []verify.PinnedRoot{{Name: "acme", Root: v.rootJSON()}}
	if len(mirrors) > 0 {
		l.setMirrors(mirrors...)
	}
	return l
}

func (l *laptop) setMirrors(mirrors ...string) {
	l.t.Helper()
	if err := SaveRemote(l.home, Remote{Repository: "acme", Mirrors: mirrors}); err != nil {
		l.t.Fatal(err)
	}
}

// testPolicy keeps every wait short, so fault tests take seconds; the rates stay far below
// what loopback does on a loaded machine.
var testPolicy = Policy{Tries: 3, InitialDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
	StallTimeout: 500 * time.Millisecond, RateWindow: 400 * time.Millisecond, MinRate: 200 << 10}

func (l *laptop) options(hardware ...string) Options {
	return Options{Home: l.home, Roots: l.roots, State: l.state, Hardware: hardware, Now: func() time.Time { return l.now() },
		Policy: testPolicy, Events: func(e Event) {
			l.mu.Lock()
			l.events = append(l.events, e)
			l.mu.Unlock()
		}}
}

func (l *laptop) eventsOf(kind EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (l *laptop) saved() *verify.Saved {
	s, err := l.state.Load(l.pin().StateKey())
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

func (l *laptop) pin() verify.PinnedRoot {
	for _, r := range l.roots {
		if r.Name == "acme" {
			return r
		}
	}
	l.t.Fatal("acme is not pinned")
	return verify.PinnedRoot{}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s)
}
