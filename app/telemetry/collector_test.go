package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// collector is a loopback OTLP/HTTP logs receiver that decodes every request with the
// official OpenTelemetry protobuf types, keeps what it received by record id, and
// answers as its play says (down, slow, 500, 429, success).
type collector struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	// play decides the answer to request n (from 0); nil: 200.
	play      func(n int, w http.ResponseWriter) bool
	requests  int
	received  map[string][]*logspb.LogRecord // by log.record.uid
	order     []string
	resources []map[string]string
	times     []time.Time // when (by the test's clock) each request came
	clock     Clock
}

func newCollector(t testing.TB) *collector {
	c := &collector{t: t, received: map[string][]*logspb.LogRecord{}}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	return c
}

func (c *collector) start() *collector { c.srv.Start(); c.t.Cleanup(c.srv.Close); return c }

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/logs" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.t.Errorf("collector: %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.t.Errorf("collector: the request does not decode as ExportLogsServiceRequest: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	n := c.requests
	c.requests++
	if c.clock != nil {
		c.times = append(c.times, c.clock.Now())
	}
	play := c.play
	c.mu.Unlock()
	if play != nil && !play(n, w) {
		return
	}
	c.mu.Lock()
	for _, rl := range req.ResourceLogs {
		res := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			res[kv.Key] = kv.Value.GetStringValue()
		}
		c.resources = append(c.resources, res)
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				id := attr(lr, AttrID)
				if _, seen := c.received[id]; !seen {
					c.order = append(c.order, id)
				}
				c.received[id] = append(c.received[id], lr)
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func attr(lr *logspb.LogRecord, key string) string {
	for _, kv := range lr.Attributes {
		if kv.Key == key {
			if s := kv.Value.GetStringValue(); s != "" {
				return s
			}
			return fmt.Sprint(kv.Value.GetIntValue())
		}
	}
	return ""
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.received)
}

// checkDuplicates fails the test if a record id arrived twice with different contents.
func (c *collector) checkDuplicates(t *testing.T) (dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, rs := range c.received {
		for _, r := range rs[1:] {
			dups++
			if !proto.Equal(r, rs[0]) {
				t.Fatalf("record %s arrived twice with different contents", id)
			}
		}
	}
	return dups
}

// fakeClock is simulated time: Sleep returns at once, moving the clock on.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	advance func(now time.Time) // called after each move, outside the lock
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	now, adv := f.now, f.advance
	f.mu.Unlock()
	if adv != nil {
		adv(now)
	}
	return ctx.Err()
}

var start = time.Date(2026, 3, 2, 9, 17, 0, 0, time.UTC)

func newQueue(t testing.TB, lim Limits, now func() time.Time) *Queue {
	q, err := OpenQueue(filepath.Join(t.TempDir(), "queue.db"), lim, now)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func event(i int, at time.Time) Event {
	return Event{ID: NewEventID(), Type: TypeFlash, Outcome: "ok", DurationMS: int64(9000 + i), From: "1.0.0", To: "1.1.0",
		Hardware: "acme-gw-r2", Device: fmt.Sprintf("%032x", i), AppVersion: "1.4.0", Hour: RoundHour(at)}
}

func fill(t testing.TB, q *Queue, n int, at time.Time) []Event {
	var evs []Event
	for i := range n {
		evs = append(evs, event(i, at))
	}
	if err := q.AddAll(evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

func endpointFor(t testing.TB, c *collector, timeout time.Duration) *Endpoint {
	ep, err := NewEndpoint(c.srv.URL, nil, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// hostPort of a listener that was closed: the server is down.
func closedPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
