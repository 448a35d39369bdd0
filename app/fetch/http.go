package fetch

import (
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
	"sync/atomic"
	"time"
)

// Policy bounds how long a fetch waits for what, and how hard it retries. Zero fields take
// the defaults below; tests shorten them.
type Policy struct {
	// Tries is how many times one file is tried on one mirror before the next mirror is
	// asked (tries that brought new bytes do not count). Default 3.
	Tries int
	// InitialDelay and MaxDelay bound the exponential backoff between tries (with ±50 %
	// jitter, so a crowd of laptops does not retry in step). Defaults 500 ms and 30 s.
	InitialDelay, MaxDelay time.Duration
	// StallTimeout: a response that brings no byte for this long is abandoned. Default 30 s.
	StallTimeout time.Duration
	// HeaderTimeout bounds the wait for a response's headers. Default 30 s.
	HeaderTimeout time.Duration
	// MinRate (bytes/s, averaged over RateWindow) below which a mirror counts as slow and
	// the next one is tried, when there is another. Defaults 32 KiB/s over 20 s.
	MinRate    float64
	RateWindow time.Duration
	// Metadata size limits, go-tuf's updater defaults, capped by what a bundle may carry.
	RootMaxLength, TimestampMaxLength, SnapshotMaxLength, TargetsMaxLength int64
	// MaxRootRotations bounds the root versions walked in one fetch. Default 256.
	MaxRootRotations int64
	// MaxRoles bounds the delegated roles loaded. Default 256, the bundle limit.
	MaxRoles int
}

func (p Policy) withDefaults() Policy {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defN := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if p.Tries <= 0 {
		p.Tries = 3
	}
	def(&p.InitialDelay, 500*time.Millisecond)
	def(&p.MaxDelay, 30*time.Second)
	def(&p.StallTimeout, 30*time.Second)
	def(&p.HeaderTimeout, 30*time.Second)
	def(&p.RateWindow, 20*time.Second)
	if p.MinRate <= 0 {
		p.MinRate = 32 << 10
	}
	defN(&p.RootMaxLength, 512000)
	defN(&p.TimestampMaxLength, 16384)
	defN(&p.SnapshotMaxLength, 2000000)
	defN(&p.TargetsMaxLength, 4<<20)
	defN(&p.MaxRootRotations, 256)
	if p.MaxRoles <= 0 {
		p.MaxRoles = 256
	}
	return p
}

// How a mirror failed, which decides what happens next.
type failKind int

const (
	failDown    failKind = iota // unreachable, reset, 5xx, stalled, cut short: retry, then the next mirror
	failSlow                    // too slow while another mirror might be faster: the next mirror
	failMissing                 // 404: this mirror does not have the file
	failWrong                   // it served something that does not verify: never ask it again in this fetch
	failAuth                    // TLS authentication failed one way or the other: retrying cannot help
)

type mirrorError struct {
	mirror string
	kind   failKind
	err    error
}

func (e *mirrorError) Error() string { return "mirror " + e.mirror + ": " + e.err.Error() }
func (e *mirrorError) Unwrap() error { return e.err }

func kindOf(err error) failKind {
	var me *mirrorError
	if errors.As(err, &me) {
		return me.kind
	}
	return failDown
}

var (
	errStalled = errors.New("stalled: no data arrived")
	errSlow    = errors.New("too slow")
)

// newClient is the HTTP client of one repository: its TLS settings, no transparent
// decompression (bytes must arrive as signed, and Range must address them), and redirects
// only within the same host and scheme, so neither the client certificate nor the request
// wanders off to a host nobody configured.
func newClient(r *Remote, p Policy) (*http.Client, error) {
	tlsConf, err := r.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: p.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
				return &redirectError{fmt.Sprintf("redirected from %s to %s, another host: fieldflash follows redirects only within the mirror's own host", first.Redacted(), req.URL.Redacted())}
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}, nil
}

// tlsFailure says, in words a user can act on, why a TLS handshake failed; "" when err is
// not a TLS authentication failure.
func tlsFailure(err error) string {
	var alert tls.AlertError
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &verr), errors.As(err, &unknown), errors.As(err, &host):
		return "the server's certificate is not trusted for this repository (" + err.Error() + "); check the server CA configured with `fieldflash remote add --server-ca`"
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls: "):
		// A TLS alert from the server (Go reports those as "remote error: tls: ..."):
		return "the server refused this laptop's TLS handshake (" + err.Error() + "); it probably wants a client certificate: configure it with `fieldflash remote add --client-cert --client-key`"
	}
	return ""
}

type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// fileURL joins a mirror's base URL and a path below it, escaping each path segment.
func fileURL(mirror string, segments ...string) string {
	parts := []string{strings.TrimRight(mirror, "/")}
	for _, s := range segments {
		for _, seg := range strings.Split(s, "/") {
			parts = append(parts, url.PathEscape(seg))
		}
	}
	return strings.Join(parts, "/")
}

// response is an open GET whose body is watched for stalls and slowness.
type response struct {
	*http.Response
	body   *watchedBody
	cancel context.CancelCauseFunc
}

func (r *response) Close() {
	r.body.stop()
	r.cancel(nil)
	r.Response.Body.Close()
}

// open sends a GET for u from offset on (a Range request when offset > 0). The body reader
// fails with errStalled or errSlow (as a *mirrorError) when the watchdog gives up on it.
// minRate 0 disables the slowness check.
func (s *session) open(ctx context.Context, mirror, u string, offset int64, minRate float64) (*response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		cancel(nil)
		return nil, &mirrorError{mirror, failWrong, err}
	}
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		cancel(nil)
		var re *redirectError
		if errors.As(err, &re) {
			return nil, &mirrorError{mirror, failWrong, re}
		}
		if why := tlsFailure(err); why != "" {
			return nil, &mirrorError{mirror, failAuth, errors.New(why)}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &mirrorError{mirror, failDown, err}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		cancel(nil)
		return nil, &mirrorError{mirror, failMissing, fmt.Errorf("%s: %s", req.URL.Redacted(), resp.Status)}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		resp.Body.Close()
		cancel(nil)
		return nil, &mirrorError{mirror, failDown, fmt.Errorf("%s: %s", req.URL.Redacted(), resp.Status)}
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		resp.Body.Close()
		cancel(nil)
		return nil, &mirrorError{mirror, failWrong, fmt.Errorf("%s: %s", req.URL.Redacted(), resp.Status)}
	}
	wb := &watchedBody{r: resp.Body, mirror: mirror, ctx: rctx}
	wb.start(cancel, s.policy.StallTimeout, minRate, s.policy.RateWindow)
	return &response{Response: resp, body: wb, cancel: cancel}, nil
}

// watchedBody counts what arrives and gives up on a response that stalls or drips.
type watchedBody struct {
	r      io.Reader
	mirror string
	ctx    context.Context
	n      atomic.Int64
	done   chan struct{}
}

func (w *watchedBody) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	w.n.Add(int64(n))
	if err != nil && err != io.EOF {
		switch cause := context.Cause(w.ctx); {
		case errors.Is(cause, errStalled):
			return n, &mirrorError{w.mirror, failDown, cause}
		case errors.Is(cause, errSlow):
			return n, &mirrorError{w.mirror, failSlow, cause}
		}
		return n, &mirrorError{w.mirror, failDown, err}
	}
	return n, err
}

func (w *watchedBody) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

func (w *watchedBody) start(cancel context.CancelCauseFunc, stall time.Duration, minRate float64, window time.Duration) {
	w.done = make(chan struct{})
	tick := max(min(stall, window)/8, 5*time.Millisecond)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		type sample struct {
			at time.Time
			n  int64
		}
		start := time.Now()
		last, lastAt := int64(0), start
		samples := []sample{{start, 0}}
		for {
			select {
			case <-w.done:
				return
			case now := <-t.C:
				n := w.n.Load()
				if n != last {
					last, lastAt = n, now
				}
				if now.Sub(lastAt) > stall {
					cancel(fmt.Errorf("%w for %s", errStalled, stall))
					return
				}
				samples = append(samples, sample{now, n})
				// Keep the samples of the last window, plus the one just before it.
				for len(samples) > 2 && now.Sub(samples[1].at) >= window {
					samples = samples[1:]
				}
				if minRate > 0 && now.Sub(start) >= window {
					first := samples[0]
					if rate := float64(n-first.n) / now.Sub(first.at).Seconds(); rate < minRate {
						cancel(fmt.Errorf("%w: %.0f bytes/s over %s, below %.0f", errSlow, rate, window, minRate))
						return
					}
				}
			}
		}
	}()
}
