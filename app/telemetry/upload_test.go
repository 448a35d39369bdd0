package telemetry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
)

func TestWhatIsSentHoldsOnlyTheMinimalFields(t *testing.T) {
	c := newCollector(t).start()
	q := newQueue(t, Limits{}, func() time.Time { return start })
	ev := event(1, start)
	ev.ErrorClass = "check"
	ev.Outcome = "failed"
	q.Add(ev)
	up := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 0), AppVersion: "1.4.0", AuditHead: func() string { return "12:ab" }}
	rep, err := up.Drain(context.Background())
	if err != nil || rep.Sent != 1 {
		t.Fatalf("drain: %+v %v", rep, err)
	}
	lr := c.received[ev.ID][0]
	var keys []string
	for _, kv := range lr.Attributes {
		keys = append(keys, kv.Key)
	}
	want := []string{AttrID, AttrType, AttrOutcome, AttrErrorClass, AttrDuration, AttrFrom, AttrTo, AttrHardware, AttrDevice, AttrAppVersion}
	if !slices.Equal(keys, want) {
		t.Fatalf("attributes %v, want exactly %v", keys, want)
	}
	if got := time.Unix(0, int64(lr.TimeUnixNano)).UTC(); !got.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) || lr.ObservedTimeUnixNano != lr.TimeUnixNano {
		t.Fatalf("time %v (observed %d), want the hour 09:00", got, lr.ObservedTimeUnixNano)
	}
	if lr.SeverityNumber != logspb.SeverityNumber_SEVERITY_NUMBER_WARN || lr.EventName != "fieldflash.flash" || attr(lr, AttrErrorClass) != "check" {
		t.Fatalf("record %v", lr)
	}
	res := c.resources[0]
	if len(res) != 3 || res["service.name"] != "fieldflash" || res["service.version"] != "1.4.0" || res[AttrAuditHead] != "12:ab" {
		t.Fatalf("resource %v", res)
	}
	if st, _ := q.Status(); st.Waiting != 0 || st.Sent.Total != 1 || st.Sent.LastSent.IsZero() {
		t.Fatalf("status after the upload %+v", st)
	}
}

// The laptop is offline for three days of simulated time: nothing listens at the
// endpoint. Then the collector comes up on that address. Every event queued before and
// during the outage arrives; a record arrives twice only with the same id and contents.
func TestAServerDownForDaysThenUpReceivesEveryEvent(t *testing.T) {
	addr := closedPort(t)
	c := newCollector(t)
	clk := &fakeClock{now: start}
	c.clock = clk
	upAt := start.Add(72 * time.Hour)
	q := newQueue(t, Limits{}, clk.Now)
	want := fill(t, q, 40, start)
	up := false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clk.advance = func(now time.Time) {
		// More events while offline, one every simulated ~6 hours.
		if !up && len(clk.sleeps)%5 == 0 {
			ev := event(len(want), now)
			q.Add(ev)
			want = append(want, ev)
		}
		if !up && !now.Before(upAt) {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("collector cannot come up on %s: %v", addr, err)
				cancel()
				return
			}
			c.srv.Listener = l
			c.start()
			up = true
		}
		if up && c.unique() >= len(want) {
			cancel()
		}
	}
	ep, err := NewEndpoint("http://"+addr, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u := &Uploader{Queue: q, Endpoint: ep, Clock: clk, BatchSize: 7, ProbeEvery: time.Minute}
	if err := u.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("run ended with %v before every event arrived (%d of %d, clock %v)", err, c.unique(), len(want), clk.Now())
	}
	for _, ev := range want {
		if len(c.received[ev.ID]) == 0 {
			t.Fatalf("event %s never arrived", ev.ID)
		}
	}
	if len(c.received) != len(want) {
		t.Fatalf("collector got %d ids, %d were queued", len(c.received), len(want))
	}
	c.checkDuplicates(t)
	// Backoff grew from seconds toward its cap, with jitter, and the probe kept looking.
	var waits []time.Duration
	for _, s := range clk.sleeps {
		if s != time.Minute {
			waits = append(waits, s)
		}
	}
	if len(waits) < 5 || slices.Max(waits) > 30*time.Minute || slices.Min(waits) > 10*time.Second {
		t.Fatalf("waits between attempts %v", waits)
	}
	if clk.Now().Sub(upAt) > 2*time.Minute {
		t.Fatalf("the queue went at %v, %v after the collector came up: the probe should have found it within a minute", clk.Now(), clk.Now().Sub(upAt))
	}
	if st, _ := q.Status(); st.Waiting != 0 || int(st.Sent.Total) != len(want) {
		t.Fatalf("queue after the outage %+v", st)
	}
}

func TestUploadHonoursRetryAfterOn429And503(t *testing.T) {
	clk := &fakeClock{now: start}
	c := newCollector(t)
	c.clock = clk
	c.play = func(n int, w http.ResponseWriter) bool {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return false
		case 1:
			w.Header().Set("Retry-After", clk.Now().Add(time.Hour).Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			return false
		}
		return true
	}
	c.start()
	q := newQueue(t, Limits{}, clk.Now)
	want := fill(t, q, 3, start)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk.advance = func(time.Time) {
		if c.unique() == len(want) {
			cancel()
		}
	}
	u := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 0), Clock: clk}
	u.Run(ctx)
	if c.unique() != 3 || len(c.times) != 3 {
		t.Fatalf("%d events over %d requests", c.unique(), len(c.times))
	}
	if d := c.times[1].Sub(c.times[0]); d != 120*time.Second {
		t.Fatalf("after 429 Retry-After: 120 the next request came %v later", d)
	}
	if d := c.times[2].Sub(c.times[1]); d != time.Hour {
		t.Fatalf("after 503 Retry-After an hour ahead the next request came %v later", d)
	}
}

func TestUploadRetries500WithGrowingJitteredBackoff(t *testing.T) {
	clk := &fakeClock{now: start}
	c := newCollector(t)
	c.clock = clk
	c.play = func(n int, w http.ResponseWriter) bool {
		if n < 6 {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("collector exploded"))
			return false
		}
		return true
	}
	c.start()
	q := newQueue(t, Limits{}, clk.Now)
	fill(t, q, 5, start)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk.advance = func(time.Time) {
		if c.unique() == 5 {
			cancel()
		}
	}
	var errs []string
	u := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 0), Clock: clk, OnAttempt: func(a Attempt) {
		if a.Verdict.Retry {
			errs = append(errs, a.Verdict.Message)
		}
	}}
	u.Run(ctx)
	if c.unique() != 5 {
		t.Fatalf("%d of 5 arrived", c.unique())
	}
	if len(errs) != 6 || !strings.Contains(errs[0], "500 Internal Server Error collector exploded") {
		t.Fatalf("retry messages %q", errs)
	}
	var gaps []time.Duration
	for i := 1; i < len(c.times); i++ {
		gaps = append(gaps, c.times[i].Sub(c.times[i-1]))
	}
	// 5 s, 10 s, 20 s, ... each within ±50 %.
	for i, g := range gaps {
		base := 5 * time.Second << i
		if g < base/2 || g > base*3/2 {
			t.Fatalf("gap %d is %v, want %v ± 50 %% (all: %v)", i, g, base, gaps)
		}
	}
	if st, _ := q.Status(); st.Sent.LastError != "" || st.Waiting != 0 {
		t.Fatalf("status %+v", st)
	}
}

// A collector that takes the records but answers only after the client gave up: the
// client sends them again, with the same ids, and the collector can drop the copies.
func TestASlowCollectorGetsResentRecordsWithTheSameIDs(t *testing.T) {
	c := newCollector(t)
	release := make(chan struct{})
	// The first two requests are taken (their records count as received) but answered
	// only after the client's 300 ms timeout.
	slow := c.srv.Config.Handler
	c.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		n := c.requests
		c.mu.Unlock()
		slow.ServeHTTP(w, r)
		if n < 2 {
			select {
			case <-release:
			case <-time.After(2 * time.Second):
			}
		}
	})
	c.start()
	defer close(release)
	q := newQueue(t, Limits{}, func() time.Time { return start })
	want := fill(t, q, 12, start)
	u := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 300*time.Millisecond), BatchSize: 5}
	for i := 0; i < 10; i++ {
		if _, err := u.Drain(context.Background()); err == nil {
			break
		}
	}
	if st, _ := q.Status(); st.Waiting != 0 {
		t.Fatalf("%d still waiting", st.Waiting)
	}
	for _, ev := range want {
		if len(c.received[ev.ID]) == 0 {
			t.Fatalf("event %s never arrived", ev.ID)
		}
	}
	if dups := c.checkDuplicates(t); dups == 0 {
		t.Fatal("the slow answers caused no resend: the test did not test")
	}
}

func TestQueueCapsDropOldestFirstAndTheNextUploadSaysSo(t *testing.T) {
	now := start
	q := newQueue(t, Limits{MaxEvents: 5, MaxAge: 30 * 24 * time.Hour}, func() time.Time { return now })
	evs := fill(t, q, 8, start)
	list, _ := q.List(0)
	if len(list) != 5 || list[0].ID != evs[3].ID || list[4].ID != evs[7].ID {
		t.Fatalf("after 8 into a queue of 5: %d, first %s", len(list), list[0].ID)
	}
	st, _ := q.Status()
	if st.Dropped.ByCount != 3 || st.Waiting != 5 {
		t.Fatalf("status %+v", st)
	}
	// 31 days on, two of them have aged out too... all five were queued at start.
	now = start.Add(31 * 24 * time.Hour)
	fresh := event(99, now)
	q.Add(fresh)
	st, _ = q.Status()
	if st.Dropped.ByAge != 5 || st.Waiting != 1 {
		t.Fatalf("after 31 days: %+v", st)
	}
	c := newCollector(t).start()
	u := &Uploader{Queue: q, Endpoint: endpointFor(t, c, 0), Clock: &fakeClock{now: now}}
	rep, err := u.Drain(context.Background())
	if err != nil || rep.DroppedReported != 8 {
		t.Fatalf("drain %+v %v", rep, err)
	}
	var notice *logspb.LogRecord
	for _, rs := range c.received {
		if attr(rs[0], AttrType) == TypeDropped {
			notice = rs[0]
		}
	}
	if notice == nil || attr(notice, AttrDropCount) != "3" || attr(notice, AttrDropAge) != "5" || len(c.received) != 2 {
		t.Fatalf("dropped notice %v (%d records)", notice, len(c.received))
	}
	st, _ = q.Status()
	if st.Dropped.Total() != 0 || st.Sent.DroppedReported != 8 || st.Waiting != 0 {
		t.Fatalf("after the report: %+v", st)
	}
}

func TestABadRequestIsDroppedAndCountedNotRetriedForever(t *testing.T) {
	c := newCollector(t)
	c.play = func(n int, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	c.start()
	q := newQueue(t, Limits{}, func() time.Time { return start })
	fill(t, q, 3, start)
	rep, err := (&Uploader{Queue: q, Endpoint: endpointFor(t, c, 0)}).Drain(context.Background())
	if err != nil || rep.Rejected != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
	if st, _ := q.Status(); st.Waiting != 0 || st.Sent.Rejected != 3 {
		t.Fatalf("%+v", st)
	}
}

func testCA(t *testing.T) (caPEM []byte, serverCert tls.Certificate) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldflash test CA (tests only)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestATLSCollectorWithItsOwnCAIsReachedOnlyWithThePin(t *testing.T) {
	caPEM, cert := testCA(t)
	c := newCollector(t)
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	q := newQueue(t, Limits{}, func() time.Time { return start })
	fill(t, q, 2, start)

	unpinned, _ := NewEndpoint(c.srv.URL, nil, 5*time.Second)
	_, err := (&Uploader{Queue: q, Endpoint: unpinned}).Drain(context.Background())
	var re *RetryError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "pin it") || c.unique() != 0 {
		t.Fatalf("unpinned: %v", err)
	}
	pinned, err := NewEndpoint(c.srv.URL, caPEM, 5*time.Second)
	if err != nil || !pinned.Pinned {
		t.Fatal(err)
	}
	if rep, err := (&Uploader{Queue: q, Endpoint: pinned}).Drain(context.Background()); err != nil || rep.Sent != 2 {
		t.Fatalf("pinned: %+v %v", rep, err)
	}
}

func TestEndpointsMustBeHTTPSExceptToLoopback(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://collector.example.com:4318":        true,
		"https://collector.example.com/v1/logs":     true,
		"http://127.0.0.1:4318":                     true,
		"http://localhost:4318":                     true,
		"http://[::1]:4318":                         true,
		"http://collector.example.com:4318":         false,
		"http://10.0.0.1:4318":                      false,
		"ftp://collector.example.com":               false,
		"https://user:secret@collector.example.com": false,
		"collector.example.com":                     false,
	} {
		ep, err := NewEndpoint(raw, nil, 0)
		if (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", raw, err, ok)
		}
		if err == nil && !strings.HasSuffix(ep.URL.Path, "/v1/logs") {
			t.Errorf("%s: path %s", raw, ep.URL.Path)
		}
	}
	if _, err := NewEndpoint("https://c.example.com", []byte("not pem"), 0); err == nil {
		t.Error("a CA without a certificate was accepted")
	}
}

func TestJudgeReadsPartialSuccess(t *testing.T) {
	// ExportLogsServiceResponse{partial_success{rejected_log_records: 2, error_message: "bad"}}
	body := []byte{0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, 'b', 'a', 'd'}
	v := Judge(200, "", body, start)
	if !v.Delivered || v.Rejected != 2 || v.Message != "bad" {
		t.Fatalf("%+v", v)
	}
	if v := Judge(429, "Wed, 21 Oct 2015 07:28:00 GMT", nil, start); v.After != 0 || !v.Retry {
		t.Fatalf("a Retry-After in the past: %+v", v)
	}
	if v := Judge(503, "999999", nil, start); v.After != MaxRetryAfter {
		t.Fatalf("a Retry-After of 11 days: %+v", v)
	}
}
