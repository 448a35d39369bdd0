package fetch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify"
)

// FuzzContentRange feeds a server's Content-Range header to its parser: it may refuse,
// never panic, and what it accepts is a sane span.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 5-5/*", "bytes 10-9/100", "bytes -1-3/4", "bytes 0-99999999999999999999/1", "items 0-1/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, total, err := parseContentRange(v)
		if err != nil {
			return
		}
		if start < 0 || end < start || (total >= 0 && end >= total) || total < -1 {
			t.Fatalf("accepted %q as %d-%d/%d", v, start, end, total)
		}
	})
}

// fileTransport answers requests from a map, in place of a mirror: the fuzzer's bytes
// reach the client's parsers without a socket per input. Below the HTTP boundary only.
type fileTransport map[string][]byte

func (ft fileTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, ok := ft[r.URL.Path]
	if !ok {
		return &http.Response{StatusCode: 404, Status: "404 Not Found", Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	h := http.Header{"Content-Length": {strconv.Itoa(len(b))}}
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: h, ContentLength: int64(len(b)), Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

// FuzzMetadataFromAMirror serves a repository in which one metadata file is replaced by
// the fuzzer's bytes, through the whole refresh: go-tuf and the delegation walk may refuse
// it, nothing may panic.
func FuzzMetadataFromAMirror(f *testing.F) {
	v, _, _ := acmeRelease(f)
	files := fileTransport{}
	for _, name := range []string{"1.root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		b, err := os.ReadFile(filepath.Join(v.repo.Dir, "metadata", name))
		if err != nil {
			f.Fatal(err)
		}
		files["/metadata/"+name] = b
		f.Add(uint8(len(files)), b)
	}
	f.Add(uint8(0), []byte(`{"signed":{"_type":"root","version":2},"signatures":[]}`))
	f.Add(uint8(1), []byte(`{"signed":{"_type":"timestamp","version":9,"expires":"2099-01-01T00:00:00Z","meta":{}},"signatures":[]}`))
	targets := []string{"/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/snapshot.json", "/metadata/targets.json"}
	l := newLaptop(f, v, "http://mirror.invalid")
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		served := fileTransport{}
		for k, b := range files {
			served[k] = b
		}
		served[targets[int(which)%len(targets)]] = data
		s, err := newSession(l.options("acme-gw-r2"))
		if err != nil {
			t.Fatal(err)
		}
		s.client.Transport = served
		tr, err := s.refreshFrom(context.Background(), "http://mirror.invalid", &verify.Saved{}, time.Now())
		if err == nil {
			releases(tr.tm, tr.order, s.policy.MaxRoles)
		}
	})
}
