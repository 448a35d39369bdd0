package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/app/cache"
	"github.com/fieldflash/fieldflash/verify"
)

// download brings one release into the cache, or finds it there. It returns the cached
// file and how many bytes came over the network in this run.
func (s *session) download(ctx context.Context, r Release, consistent bool) (string, int64, error) {
	if s.cache.Has(r.SHA256, r.Length) {
		return s.cache.Path(r.SHA256), 0, nil
	}
	e := cache.Expect{SHA256: r.SHA256, Length: r.Length, Hashes: map[string][]byte{}}
	for alg, h := range r.tf.Hashes {
		e.Hashes[alg] = h
	}
	if r.tf.Custom != nil {
		c, err := verify.ParseChunks(*r.tf.Custom, r.Length)
		if err != nil {
			s.warn("target %s: its chunk hashes are malformed (%v); it is checked as a whole only", r.Path, err)
		}
		e.Chunks = c
	}
	thing := "target " + r.Path
	p, err := s.cache.OpenPartial(e)
	if err != nil {
		if errors.Is(err, cache.ErrBusy) {
			return "", 0, &Error{Code: CodeIO, Thing: thing, Reason: err.Error(), Err: err}
		}
		return "", 0, &Error{Code: CodeIO, Thing: thing, Reason: "the cache could not hold it: " + err.Error(), Next: "check that $FIELDFLASH_HOME is writable and has room", Err: err}
	}
	defer p.Close()
	resumed := p.Offset()
	s.emit(Event{Kind: EventStart, Target: r.Path, Bytes: resumed, Total: r.Length})
	meter := &rateMeter{}
	var failures []string
	wrong := false
	// First every mirror in order, leaving those that are slow while another remains; then,
	// if only slow ones are left, a slow mirror is better than none.
	for pass := 0; pass < 2 && !p.Complete(); pass++ {
		for _, m := range s.usable() {
			if pass == 1 && !slices.Contains(s.slow, m) {
				continue
			}
			err := s.fromMirror(ctx, m, r, p, consistent, pass == 0, meter)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return "", p.Offset() - resumed, &Error{Code: CodeCanceled, Thing: thing, Reason: fmt.Sprintf("interrupted at %d of %d bytes", p.Offset(), r.Length),
					Next: "run the same command again: the download resumes where it stopped", Err: ctx.Err()}
			}
			var fe *Error
			if errors.As(err, &fe) {
				return "", p.Offset() - resumed, fe
			}
			failures = append(failures, err.Error())
			switch kindOf(err) {
			case failWrong:
				wrong = true
				s.markWrong(m, err)
			case failSlow:
				s.slow = append(s.slow, m)
				s.emit(Event{Kind: EventDropped, Mirror: m, Target: r.Path, Message: err.Error()})
			default:
				s.emit(Event{Kind: EventDropped, Mirror: m, Target: r.Path, Message: err.Error()})
			}
		}
	}
	got := p.Offset() - resumed
	if !p.Complete() {
		code := CodeOffline
		if wrong {
			code = CodeRefused
		}
		return "", got, &Error{Code: code, Thing: thing, Reason: fmt.Sprintf("no mirror delivered it (%s); %d of %d bytes are kept", strings.Join(failures, "; "), p.Offset(), r.Length),
			Next: "run fetch again later: the download resumes where it stopped"}
	}
	final, err := p.Commit()
	if err != nil {
		var he *cache.HashError
		if errors.As(err, &he) {
			return "", got, &Error{Code: CodeRefused, Thing: thing, Reason: he.Error(), Next: "tell the vendor: the target cannot be fetched until its metadata is fixed", Err: err}
		}
		return "", got, &Error{Code: CodeIO, Thing: thing, Reason: "keeping it in the cache failed: " + err.Error(), Next: "check that $FIELDFLASH_HOME is writable and has room", Err: err}
	}
	s.emit(Event{Kind: EventDone, Target: r.Path, Bytes: r.Length, Total: r.Length, Rate: meter.rate})
	return final, got, nil
}

// fromMirror downloads what is missing of r from one mirror, retrying with backoff while
// the mirror fails in ways that may pass; tries that brought bytes reset the count.
func (s *session) fromMirror(ctx context.Context, m string, r Release, p *cache.Partial, consistent, checkRate bool, meter *rateMeter) error {
	b := s.backoffFor()
	b.Reset()
	fails := 0
	for {
		minRate := 0.0
		if checkRate && len(s.usable()) > 1 {
			minRate = s.policy.MinRate
		}
		before := p.Offset()
		err := s.stream(ctx, m, r, p, consistent, minRate, meter)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if k := kindOf(err); k != failDown {
			return err
		}
		if p.Offset() > before {
			fails = 0
			b.Reset()
		} else {
			fails++
		}
		if fails >= s.policy.Tries {
			return err
		}
		d := b.NextBackOff()
		s.emit(Event{Kind: EventRetry, Mirror: m, Target: r.Path, Bytes: p.Offset(), Total: r.Length,
			Message: fmt.Sprintf("%v; trying again in %s", err, d.Round(time.Millisecond))})
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// targetURL is where a mirror serves a target: targets/<path>, or with consistent
// snapshots targets/<dir>/<sha256>.<name>.
func targetURL(m string, r Release, consistent bool) string {
	p := r.Path
	if consistent {
		dir, base := path.Split(r.Path)
		p = dir + r.SHA256 + "." + base
	}
	return fileURL(m, "targets", p)
}

// stream makes one request for the rest of r and feeds it to p.
func (s *session) stream(ctx context.Context, m string, r Release, p *cache.Partial, consistent bool, minRate float64, meter *rateMeter) error {
	off := p.Offset()
	resp, err := s.open(ctx, m, targetURL(m, r, consistent), off, minRate)
	if err != nil {
		return err
	}
	defer resp.Close()
	wrong := func(format string, args ...any) error {
		return &mirrorError{m, failWrong, fmt.Errorf("target %s: "+format, append([]any{r.Path}, args...)...)}
	}
	var body io.Reader = resp.body
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return wrong("%v", err)
		}
		if start != off || (total >= 0 && total != r.Length) || end >= r.Length {
			return wrong("asked for bytes %d- of %d, the mirror sent %s", off, r.Length, resp.Header.Get("Content-Range"))
		}
		if resp.ContentLength > r.Length-off {
			return wrong("declares %d bytes from %d, more than the signed length %d", resp.ContentLength, off, r.Length)
		}
	case http.StatusOK:
		if resp.ContentLength > r.Length {
			return wrong("declares %d bytes, more than the signed length %d", resp.ContentLength, r.Length)
		}
		if off > 0 {
			// The mirror ignores Range: skip what is already here.
			if _, err := io.CopyN(io.Discard, body, off); err != nil {
				if errors.Is(err, io.EOF) {
					return &mirrorError{m, failDown, fmt.Errorf("target %s: ended after less than the %d bytes already here", r.Path, off)}
				}
				return err
			}
		}
	}
	body = &progressReader{r: body, s: s, target: r.Path, off: off, total: r.Length, meter: meter}
	err = p.ReadFrom(ctx, body)
	var ce *cache.ChunkError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return wrong("%v", ce)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &mirrorError{m, failDown, fmt.Errorf("target %s: cut short at byte %d of %d", r.Path, p.Offset(), r.Length)}
	}
	var me *mirrorError
	if errors.As(err, &me) || ctx.Err() != nil {
		return err
	}
	// Anything else is the cache's own trouble (a full disk), not the mirror's.
	return &Error{Code: CodeIO, Thing: "target " + r.Path, Reason: "writing it to the cache failed: " + err.Error(), Next: "check that $FIELDFLASH_HOME is writable and has room", Err: err}
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": returned as -1).
func parseContentRange(v string) (start, end, total int64, err error) {
	bad := fmt.Errorf("Content-Range %q is not bytes START-END/TOTAL", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	span, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if start, err = parseNonNeg(a); err != nil {
		return 0, 0, 0, bad
	}
	if end, err = parseNonNeg(b); err != nil || end < start {
		return 0, 0, 0, bad
	}
	if tot == "*" {
		return start, end, -1, nil
	}
	if total, err = parseNonNeg(tot); err != nil || end >= total {
		return 0, 0, 0, bad
	}
	return start, end, total, nil
}

func parseNonNeg(s string) (int64, error) {
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	return strconv.ParseInt(s, 10, 64)
}

// progressReader reports a target's bytes as they arrive, at most every 200 ms.
type progressReader struct {
	r        io.Reader
	s        *session
	target   string
	off, n   int64
	total    int64
	meter    *rateMeter
	lastEmit time.Time
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	now := time.Now()
	if now.Sub(pr.lastEmit) >= 200*time.Millisecond || err != nil {
		pr.lastEmit = now
		done := pr.off + pr.n
		rate := pr.meter.update(now, done)
		var eta time.Duration
		if rate > 0 {
			eta = time.Duration(float64(pr.total-done) / rate * float64(time.Second))
		}
		pr.s.emit(Event{Kind: EventProgress, Target: pr.target, Bytes: done, Total: pr.total, Rate: rate, ETA: eta})
	}
	return n, err
}
