package fetch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/release"
)

const appPath = "/targets/acme-gw/app-1.1.0.bin"

// rangeStart reads the start of a "bytes=N-" request header; 0 without one.
func rangeStart(r *http.Request) int64 {
	v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
	return n
}

// faulty serves data for one path as a misbehaving mirror would; every other path is
// served normally.
type faulty struct {
	path    string
	data    []byte
	stallAt int64         // stop sending at this offset and hold the connection open
	cutAt   int64         // hang up at this offset (Content-Length promised more)
	cutOnce bool          // only the first response is cut
	flipAt  int64         // flip a bit of the byte at this offset
	endless bool          // ignore Range, send the data, then garbage forever
	drip    time.Duration // pause after every KiB
	cuts    int
}

func (f *faulty) handler() func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != f.path {
			return false
		}
		data := bytes.Clone(f.data)
		if f.flipAt > 0 {
			data[f.flipAt] ^= 0x10
		}
		start := rangeStart(r)
		if f.endless {
			start = 0
		}
		if start > 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		}
		if !f.endless {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-int(start)))
		}
		if start > 0 {
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		end := int64(len(data))
		switch {
		case f.stallAt > 0 && start < f.stallAt:
			end = f.stallAt
		case f.cutAt > 0 && start < f.cutAt && !(f.cutOnce && f.cuts > 0):
			end = f.cutAt
			f.cuts++
		}
		fl := w.(http.Flusher)
		for off := start; off < end; {
			n := min(end-off, 1024)
			if f.drip == 0 {
				n = end - off
			}
			if _, err := w.Write(data[off : off+n]); err != nil {
				return true
			}
			off += n
			if f.drip > 0 {
				fl.Flush()
				select {
				case <-time.After(f.drip):
				case <-r.Context().Done():
					return true
				}
			}
		}
		fl.Flush()
		switch {
		case f.stallAt > 0 && start < f.stallAt:
			<-r.Context().Done()
		case f.endless:
			junk := bytes.Repeat([]byte("more"), 16<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(junk); err != nil {
					break
				}
			}
		}
		return true
	}
}

func fetchApp(t *testing.T, l *laptop) *Result {
	t.Helper()
	res, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func checkCachedApp(t *testing.T, res *Result, app []byte) {
	t.Helper()
	for _, f := range res.Targets {
		if f.Path == "acme-gw/app-1.1.0.bin" {
			got, err := os.ReadFile(f.File)
			if err != nil || !bytes.Equal(got, app) {
				t.Fatalf("cached app differs from the signed one (%d bytes, %v)", len(got), err)
			}
			return
		}
	}
	t.Fatal("the app was not fetched")
}

// goodRange returns the start of the good mirror's (last) request for the app.
func goodRange(t *testing.T, m *mirror) int64 {
	t.Helper()
	reqs := m.requests(appPath)
	if len(reqs) == 0 {
		t.Fatal("the good mirror was never asked for the app")
	}
	_, r, _ := strings.Cut(reqs[len(reqs)-1], " ")
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r, "bytes="), "-"), 10, 64)
	return n
}

func TestAMirrorThatIsDownIsLeftForTheNext(t *testing.T) {
	v, app, _ := acmeRelease(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	good := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, down.URL, good.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	if res.Mirror != good.URL {
		t.Fatalf("metadata came from %s; want the second mirror", res.Mirror)
	}
	if n := len(l.eventsOf(EventRetry)); n < testPolicy.Tries-1 {
		t.Errorf("%d retries of the dead mirror; want %d with backoff before moving on", n, testPolicy.Tries-1)
	}
}

func TestAMirrorThatStallsMidFileIsLeftAndTheNextResumesWhereItStopped(t *testing.T) {
	v, app, _ := acmeRelease(t)
	bad, good := newMirror(t, v.repo.Dir), newMirror(t, v.repo.Dir)
	bad.setFault((&faulty{path: appPath, data: app, stallAt: 3 << 19}).handler())
	l := newLaptop(t, v, bad.URL, good.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	if from := goodRange(t, good); from != 3<<19 {
		t.Fatalf("the next mirror was asked from byte %d; want %d, where the stalled one stopped", from, 3<<19)
	}
}

func TestAConnectionCutMidFileResumesWithARangeRequest(t *testing.T) {
	v, app, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	m.setFault((&faulty{path: appPath, data: app, cutAt: 2<<20 + 100, cutOnce: true}).handler())
	l := newLaptop(t, v, m.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	reqs := m.requests(appPath)
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1], fmt.Sprintf("bytes=%d-", 2<<20+100)) {
		t.Fatalf("requests for the app: %q; want a second one resuming at the cut", reqs)
	}
}

func TestAMirrorWithATruncatedCopyIsLeftAndTheNextCompletesIt(t *testing.T) {
	v, app, _ := acmeRelease(t)
	bad, good := newMirror(t, v.repo.Dir), newMirror(t, v.repo.Dir)
	short := app[:2<<20]
	bad.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != appPath {
			return false
		}
		http.ServeContent(w, r, "app", time.Time{}, bytes.NewReader(short))
		return true
	})
	l := newLaptop(t, v, bad.URL, good.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	if from := goodRange(t, good); from != 2<<20 {
		t.Fatalf("the next mirror was asked from byte %d; want %d, the end of the truncated copy", from, 2<<20)
	}
}

func TestAFlippedByteDropsTheMirrorAtThatChunk(t *testing.T) {
	v, app, _ := acmeRelease(t)
	bad, good := newMirror(t, v.repo.Dir), newMirror(t, v.repo.Dir)
	bad.setFault((&faulty{path: appPath, data: app, flipAt: 2<<20 + 12345}).handler())
	l := newLaptop(t, v, bad.URL, good.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	// Chunks 0 and 1 from the bad mirror were good and kept; chunk 2 was not.
	if from := goodRange(t, good); from != 2<<20 {
		t.Fatalf("the next mirror was asked from byte %d; want %d, the start of the chunk with the flipped byte", from, 2<<20)
	}
	if why := res.Dropped[bad.URL]; !strings.Contains(why, "chunk 2") {
		t.Fatalf("dropped mirrors: %v; want the bad one, for chunk 2", res.Dropped)
	}
}

func TestEndlessDataBeyondTheSignedLengthIsNotRead(t *testing.T) {
	v, app, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	m.setFault((&faulty{path: appPath, data: app, endless: true}).handler())
	l := newLaptop(t, v, m.URL)
	done := make(chan *Result, 1)
	go func() { done <- fetchApp(t, l) }()
	select {
	case res := <-done:
		checkCachedApp(t, res, app)
	case <-time.After(60 * time.Second):
		t.Fatal("fetch kept reading a mirror that never stops")
	}
}

func TestMetadataOverItsLimitIsRefusedUnread(t *testing.T) {
	v, app, _ := acmeRelease(t)
	bad, good := newMirror(t, v.repo.Dir), newMirror(t, v.repo.Dir)
	huge := bytes.Repeat([]byte(" "), 64<<10)
	bad.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/metadata/timestamp.json" {
			return false
		}
		w.Write(huge) // no Content-Length: chunked, so only reading shows the size
		w.(http.Flusher).Flush()
		w.Write(huge)
		return true
	})
	l := newLaptop(t, v, bad.URL, good.URL)
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	if why := res.Dropped[bad.URL]; !strings.Contains(why, "limit") {
		t.Fatalf("dropped: %v; want the bad mirror, for a timestamp over its limit", res.Dropped)
	}
}

func TestARedirectToAnotherHostIsNotFollowed(t *testing.T) {
	v, _, _ := acmeRelease(t)
	elsewhere := newMirror(t, v.repo.Dir)
	bad := newMirror(t, v.repo.Dir)
	bad.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
		return true
	})
	l := newLaptop(t, v, bad.URL)
	_, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	t.Log(err)
	if CodeOf(err) != CodeRefused || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("err = %v; want a refusal naming the redirect to another host", err)
	}
	if n := len(elsewhere.requests("/")); n != 0 {
		t.Fatalf("the other host got %d requests", n)
	}
}

func TestASlowDripMirrorIsLeftForAFasterOne(t *testing.T) {
	v, app, _ := acmeRelease(t)
	bad, good := newMirror(t, v.repo.Dir), newMirror(t, v.repo.Dir)
	bad.setFault((&faulty{path: appPath, data: app, drip: 20 * time.Millisecond}).handler()) // ~50 KiB/s
	l := newLaptop(t, v, bad.URL, good.URL)
	start := time.Now()
	res := fetchApp(t, l)
	checkCachedApp(t, res, app)
	if from := goodRange(t, good); from <= 0 {
		t.Fatalf("the fast mirror was asked from byte %d; want a resume after the slow one's bytes", from)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: the slow mirror was not left", d)
	}
	slow := false
	for _, e := range l.eventsOf(EventDropped) {
		slow = slow || (e.Mirror == bad.URL && strings.Contains(e.Message, "too slow"))
	}
	if !slow {
		t.Fatal("no event says the slow mirror was left for being slow")
	}
}

// twoStates publishes a first release, lets the laptop fetch it, keeps the first
// timestamp's bytes, and publishes a second one.
func twoStates(t *testing.T, firstExpiry time.Time) (v *vendor, l *laptop, good *mirror, oldTimestamp []byte) {
	v = newVendor(t)
	v.add("acme-gw/app-1.0.0.bin", payload("a", 1000), meta("acme-gw-r2", "app", "1.0.0", 1))
	v.publish(func(o *release.PublishOptions) { o.TimestampExpires = firstExpiry })
	good = newMirror(t, v.repo.Dir)
	l = newLaptop(t, v, good.URL)
	fetchApp(t, l)
	oldTimestamp = v.file("metadata/timestamp.json")
	v.add("acme-gw/app-1.1.0.bin", payload("b", 1000), meta("acme-gw-r2", "app", "1.1.0", 2))
	v.publish(func(o *release.PublishOptions) { o.TimestampExpires = time.Now().Add(30 * 24 * time.Hour) })
	return v, l, good, oldTimestamp
}

func servesTimestamp(ts []byte) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/metadata/timestamp.json" {
			return false
		}
		w.Write(ts)
		return true
	}
}

func TestARolledBackTimestampIsRefusedAndChangesNothing(t *testing.T) {
	v, l, good, old := twoStates(t, time.Now().Add(30*24*time.Hour))
	fetchApp(t, l) // now at the second state
	before := l.saved()
	bad := newMirror(t, v.repo.Dir)
	bad.setFault(servesTimestamp(old))

	l.setMirrors(bad.URL)
	_, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	t.Log(err)
	if CodeOf(err) != CodeRefused || !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("err = %v; want a refusal naming the rollback", err)
	}
	if after := l.saved(); !bytes.Equal(after.Timestamp, before.Timestamp) {
		t.Fatal("a refused timestamp changed the trusted state")
	}

	l.setMirrors(bad.URL, good.URL)
	res := fetchApp(t, l)
	if res.Mirror != good.URL || res.Dropped[bad.URL] == "" {
		t.Fatalf("metadata from %s, dropped %v; want the good mirror after leaving the replaying one", res.Mirror, res.Dropped)
	}
}

func TestAFrozenTimestampIsReportedAsStale(t *testing.T) {
	expiry := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	v, l, good, old := twoStates(t, expiry)
	bad := newMirror(t, v.repo.Dir)
	bad.setFault(servesTimestamp(old)) // the mirror stopped updating after the first state
	time.Sleep(time.Until(expiry) + 300*time.Millisecond)

	l.setMirrors(bad.URL)
	_, err := Fetch(context.Background(), l.options("acme-gw-r2"))
	t.Log(err)
	if CodeOf(err) != CodeRefused || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("err = %v; want a refusal that says the timestamp is stale (frozen)", err)
	}
	l.setMirrors(bad.URL, good.URL)
	if res := fetchApp(t, l); res.Mirror != good.URL {
		t.Fatalf("metadata from %s; want the up-to-date mirror", res.Mirror)
	}
}

func TestAWrongClockIsReportedAndDoesNotMoveTheTrustedTime(t *testing.T) {
	v, _, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, m.URL)
	l.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	res := fetchApp(t, l)
	if !anyContains(res.Warnings, "ahead of the repository server") {
		t.Fatalf("warnings %q; want the clock reported ahead of the server's", res.Warnings)
	}
	if nt, _ := l.state.NewestTime(); !nt.IsZero() {
		t.Fatalf("the newest trusted time moved to %s, from a clock the server contradicts", nt)
	}

	l.now = time.Now
	fetchApp(t, l)
	l.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	res = fetchApp(t, l)
	if !anyContains(res.Warnings, "behind the newest time") {
		t.Fatalf("warnings %q; want the clock reported behind the newest trusted time", res.Warnings)
	}
}

func anyContains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func TestARootRotationPublishedBetweenTwoFetchesIsFollowed(t *testing.T) {
	v, _, _ := acmeRelease(t)
	m := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, m.URL)
	if res := fetchApp(t, l); res.RootVersion != 1 {
		t.Fatalf("root v%d", res.RootVersion)
	}
	// The vendor replaces its root and targets keys: root v2, signed by old and new.
	newRoot, newTargets := testKey(t, "root-2"), testKey(t, "targets-2")
	_, err := v.repo.ChangeRoot(release.RootChange{Add: pubs(newRoot), Remove: []string{v.root.ID()}})
	v.must(err)
	_, err = v.repo.ChangeRoot(release.RootChange{Role: "targets", Add: pubs(newTargets), Remove: []string{v.targets.ID()}})
	v.must(err)
	v.must(v.repo.Sign("root", v.root, newRoot))
	v.targets = newTargets
	v.add("acme-gw/app-1.2.0.bin", payload("app-1.2.0", 5000), meta("acme-gw-r2", "app", "1.2.0", 3))
	v.publish()

	res := fetchApp(t, l)
	if res.RootVersion != 2 {
		t.Fatalf("after the rotation: root v%d; want v2", res.RootVersion)
	}
	if len(res.Targets) == 0 || res.Targets[0].Meta.Version != "1.2.0" {
		t.Fatalf("fetched %+v; want app 1.2.0 signed by the new targets key", res.Targets)
	}
	// A bundle made now carries the whole chain, so a laptop pinned at v1 follows it.
	out := filepath.Join(t.TempDir(), "rotated.fwb")
	if _, err := Bundle(BundleOptions{Home: l.home, Roots: l.roots, State: l.state, Hardware: "acme-gw-r2", Out: out}); err != nil {
		t.Fatal(err)
	}
	other := newLaptop(t, v)
	ver, err := verify.VerifyFile(out, verify.Options{Roots: other.roots, State: other.state, Hardware: "acme-gw-r2"})
	if err != nil || ver.RootVersion != 2 {
		t.Fatalf("verify on a laptop pinned at v1: %v", err)
	}
}

func TestAReleaseWithdrawnOnlineIsRefusedOfflineAfterAFetch(t *testing.T) {
	v, _, _ := acmeRelease(t)
	old := filepath.Join(t.TempDir(), "old.fwb")
	if _, _, err := v.repo.BundleFile(old, []string{"acme-gw/app-1.1.0.bin"}); err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, v.repo.Dir)
	l := newLaptop(t, v, m.URL)
	if _, err := verify.VerifyFile(old, verify.Options{Roots: l.roots, State: verify.NewMemoryState()}); err != nil {
		t.Fatalf("the release verifies before it is withdrawn: %v", err)
	}
	_, err := v.repo.Withdraw("acme-gw/app-1.1.0.bin")
	v.must(err)
	v.publish()
	fetchApp(t, l) // metadata only would do: the newest targets no longer list it
	_, err = verify.VerifyFile(old, verify.Options{Roots: l.roots, State: l.state})
	if verify.CodeOf(err) != verify.CodeWithdrawn {
		t.Fatalf("verify after the fetch: %v; want the withdrawn release refused", err)
	}
}
