package telemetry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Endpoint is where telemetry goes: an OTLP/HTTP logs URL and the client that reaches it.
type Endpoint struct {
	URL    *url.URL
	Client *http.Client
	// Pinned says the endpoint's CA is pinned: only certificates it issued are accepted.
	Pinned bool
}

// DefaultTimeout bounds one upload request.
const DefaultTimeout = 30 * time.Second

// NewEndpoint checks and prepares an endpoint. raw is the collector's base URL (the
// OTLP/HTTP logs path /v1/logs is added unless raw ends with it); it must be https,
// except to a loopback address. caPEM, when not empty, pins the endpoint's CA: only
// certificates it issued are accepted (the system's roots are not consulted).
func NewEndpoint(raw string, caPEM []byte, timeout time.Duration) (*Endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("telemetry endpoint %q is not a URL such as https://collector.example.com:4318", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("telemetry endpoint %s: credentials in the URL are not sent; remove them", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("telemetry endpoint %s: plain http is allowed only to this machine (loopback); use https", u.Redacted())
		}
	default:
		return nil, fmt.Errorf("telemetry endpoint %s: use https (or http to a loopback address)", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/v1/logs") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/logs"
	}
	u.RawQuery, u.Fragment = "", ""
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ep := &Endpoint{URL: u}
	if len(bytes.TrimSpace(caPEM)) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("telemetry CA: no PEM certificate in it; give the collector's CA certificate (BEGIN CERTIFICATE)")
		}
		cfg.RootCAs = pool
		ep.Pinned = true
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ep.Client = &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     cfg,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
	},
		// A redirect could take the data to another host, or to plain http.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return ep, nil
}

// IsLoopback says whether host is this machine: localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Clock is the uploader's time: real, or simulated in tests (a server down for days).
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Uploader sends the queue to the endpoint.
type Uploader struct {
	Queue    *Queue
	Endpoint *Endpoint
	// AppVersion is sent as the resource's service.version.
	AppVersion string
	// AuditHead, if set, returns the audit log's head (SEQ:HASH) to send as an anchor.
	AuditHead func() string
	// BatchSize is the most events per request (default 500).
	BatchSize int
	Clock     Clock // default RealClock
	// Backoff paces attempts after a failure (default: 5 s doubling to 30 min, ±50 %
	// jitter). A Retry-After from the endpoint replaces the next interval.
	Backoff *backoff.ExponentialBackOff
	// ProbeEvery is how often Run checks, while waiting, whether the endpoint can be
	// reached again, and how often it looks at an empty queue (default 1 min).
	ProbeEvery time.Duration
	// OnAttempt, if set, hears every request's ending (for a GUI's status line).
	OnAttempt func(Attempt)
}

// Attempt is one request and how it ended.
type Attempt struct {
	Time    time.Time
	Events  int
	Verdict Verdict
	Err     error
}

// Report is what a Drain did.
type Report struct {
	Sent            int   `json:"sent"`
	Batches         int   `json:"batches"`
	Rejected        int64 `json:"rejected"`
	DroppedReported int   `json:"dropped_reported"`
}

// RetryError is a Drain that stopped before the queue was empty: the endpoint could not
// be reached (Offline) or asked to come back later (After, from Retry-After).
type RetryError struct {
	Err     error
	After   time.Duration
	Offline bool
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

func (u *Uploader) clock() Clock {
	if u.Clock == nil {
		return RealClock{}
	}
	return u.Clock
}

// DefaultBatchSize is the most events per request.
const DefaultBatchSize = 500

// Drain sends every queued event now, batch by batch, oldest first, each batch removed
// from the queue only once the endpoint took it. It stops at the first failure with a
// *RetryError; events not yet acknowledged stay queued and go again later with the same
// ids.
func (u *Uploader) Drain(ctx context.Context) (Report, error) {
	var rep Report
	if u.Endpoint == nil {
		return rep, errNoEndpoint
	}
	size := u.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		batch, dropped, err := u.Queue.Batch(size)
		if err != nil {
			return rep, err
		}
		if len(batch) == 0 && dropped.Total() == 0 {
			return rep, nil
		}
		evs := make([]Event, len(batch))
		keys := make([]uint64, len(batch))
		for i, q := range batch {
			evs[i], keys[i] = q.Event, q.Key
		}
		head := ""
		if u.AuditHead != nil {
			head = u.AuditHead()
		}
		now := u.clock().Now()
		body, err := EncodeRequest(evs, &dropped, u.AppVersion, head, now)
		if err != nil {
			return rep, err
		}
		v, err := u.post(ctx, body)
		if u.OnAttempt != nil {
			u.OnAttempt(Attempt{Time: now, Events: len(evs), Verdict: v, Err: err})
		}
		if err != nil {
			u.Queue.NoteAttempt(err)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			return rep, &RetryError{Err: err, Offline: true}
		}
		switch {
		case v.Delivered || v.Drop:
			rejected := v.Rejected
			if v.Drop {
				rejected = int64(len(evs))
			}
			if err := u.Queue.Ack(keys, &dropped, rejected); err != nil {
				return rep, err
			}
			rep.Sent += len(evs)
			rep.Batches++
			rep.Rejected += rejected
			rep.DroppedReported += dropped.Total()
		case v.Shrink && size > 1:
			size = max(size/2, 1)
		case v.Shrink:
			// One event is too large for the endpoint: it never will be taken.
			if err := u.Queue.Ack(keys, nil, int64(len(evs))); err != nil {
				return rep, err
			}
			rep.Rejected += int64(len(evs))
		default:
			err := fmt.Errorf("telemetry endpoint %s: %s", u.Endpoint.URL.Redacted(), v.describe())
			u.Queue.NoteAttempt(err)
			return rep, &RetryError{Err: err, After: v.After}
		}
	}
}

// lastStatus is kept by post for describe.
func (v Verdict) describe() string {
	s := "asked to try again later"
	if v.Message != "" {
		s += ": " + v.Message
	}
	return s
}

func (u *Uploader) post(ctx context.Context, body []byte) (Verdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.Endpoint.URL.String(), bytes.NewReader(body))
	if err != nil {
		return Verdict{}, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "fieldflash/"+u.AppVersion)
	resp, err := u.Endpoint.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		hint := ""
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			hint = "; if the collector uses its own CA, pin it (`fieldflash telemetry config --ca FILE`)"
		}
		return Verdict{}, fmt.Errorf("telemetry endpoint %s: %v%s", u.Endpoint.URL.Redacted(), err, hint)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	v := Judge(resp.StatusCode, resp.Header.Get("Retry-After"), data, u.clock().Now())
	if v.Retry {
		v.Message = strings.TrimSpace(fmt.Sprintf("%s %s", resp.Status, v.Message))
	}
	return v, nil
}

// Run keeps the queue flowing until ctx ends: it drains whenever events wait; after a
// failure it waits the backoff's next interval (with jitter), or the endpoint's
// Retry-After, and while waiting after a connection failure it probes the endpoint
// every ProbeEvery, so the queue goes as soon as the connection comes back.
func (u *Uploader) Run(ctx context.Context) error {
	c := u.clock()
	b := u.Backoff
	if b == nil {
		b = DefaultBackoff()
	}
	b.Reset()
	probe := u.ProbeEvery
	if probe <= 0 {
		probe = time.Minute
	}
	for {
		st, err := u.Queue.Status()
		if err != nil {
			return err
		}
		if st.Waiting == 0 && st.Dropped.Total() == 0 {
			if err := c.Sleep(ctx, probe); err != nil {
				return err
			}
			continue
		}
		_, err = u.Drain(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			b.Reset()
			continue
		}
		var re *RetryError
		if !errors.As(err, &re) {
			// The queue itself failed (disk): try again at the next probe.
			if err := c.Sleep(ctx, probe); err != nil {
				return err
			}
			continue
		}
		wait := b.NextBackOff()
		if re.After > 0 {
			wait = re.After
		}
		if !re.Offline {
			if err := c.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		for until := c.Now().Add(wait); c.Now().Before(until); {
			if err := c.Sleep(ctx, min(probe, until.Sub(c.Now()))); err != nil {
				return err
			}
			if u.reachable(ctx) {
				break
			}
		}
	}
}

// reachable dials the endpoint: the probe that says the connection is back.
func (u *Uploader) reachable(ctx context.Context) bool {
	host := u.Endpoint.URL.Host
	if u.Endpoint.URL.Port() == "" {
		port := "443"
		if u.Endpoint.URL.Scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(u.Endpoint.URL.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// DefaultBackoff is the pacing after a failed upload: 5 s, doubling, to 30 min, each
// interval randomised by ±50 % so laptops that come back online together do not call the
// endpoint in step.
func DefaultBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 5 * time.Second
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = 30 * time.Minute
	return b
}
