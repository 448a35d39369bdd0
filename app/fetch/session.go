package fetch

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/fieldflash/fieldflash/app/cache"
	"github.com/fieldflash/fieldflash/verify"
)

// Options says what to fetch, from where, and against which trust.
type Options struct {
	// Home is $FIELDFLASH_HOME: remotes/ and cache/ live there.
	Home string
	// Repository names the pinned root (and its remote); "" picks the only one configured.
	Repository string
	// Roots are the pinned roots of the trust store; the one named Repository is used.
	Roots []verify.PinnedRoot
	// State is the newest trusted metadata and time, shared with offline verification.
	// When it is a verify.Locker it is held while the metadata is refreshed.
	State verify.State
	// Hardware lists the hardware ids whose newest releases are downloaded; none refreshes
	// the metadata only (Result.Available lists what there is).
	Hardware []string
	// Now is the system clock; nil means time.Now.
	Now func() time.Time
	// Events receives progress; nil drops it. Called from one goroutine at a time.
	Events func(Event)
	Policy Policy
	// UserAgent is sent with every request; default "fieldflash".
	UserAgent string
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventMirror   EventKind = "mirror"   // asking a mirror for metadata
	EventMetadata EventKind = "metadata" // a role was trusted (Message: role and version)
	EventStart    EventKind = "start"    // a target's download starts (or resumes at Bytes)
	EventProgress EventKind = "progress" // bytes of a target so far
	EventDone     EventKind = "done"     // a target is verified and in the cache
	EventRetry    EventKind = "retry"    // a try failed; the next one follows after a backoff
	EventDropped  EventKind = "dropped"  // a mirror is left for another (Message: why)
	EventWarning  EventKind = "warning"  // something the user must see, e.g. a wrong clock
)

// Event is one thing a fetch reports, for the CLI's progress line, --json and the GUI.
type Event struct {
	Time    time.Time     `json:"time"`
	Kind    EventKind     `json:"kind"`
	Mirror  string        `json:"mirror,omitempty"`
	Target  string        `json:"target,omitempty"`
	Bytes   int64         `json:"bytes,omitempty"`
	Total   int64         `json:"total,omitempty"`
	Rate    float64       `json:"rate,omitempty"` // bytes/s, smoothed
	ETA     time.Duration `json:"eta,omitempty"`
	Message string        `json:"message,omitempty"`
}

// session is one fetch: one repository, its mirrors and its client.
type session struct {
	opts      Options
	remote    *Remote
	pinned    verify.PinnedRoot
	cache     *cache.Cache
	client    *http.Client
	policy    Policy
	userAgent string
	now       func() time.Time

	mu       sync.Mutex
	wrong    map[string]string // mirrors that served bad data in this fetch, and why
	slow     []string          // mirrors left for being slow
	warnings []string
}

// newSession resolves the repository, its remote and its pinned root.
func newSession(opts Options) (*session, error) {
	s := &session{opts: opts, policy: opts.Policy.withDefaults(), userAgent: opts.UserAgent, now: opts.Now, wrong: map[string]string{}}
	if s.userAgent == "" {
		s.userAgent = "fieldflash"
	}
	if s.now == nil {
		s.now = time.Now
	}
	name := opts.Repository
	if name == "" {
		remotes, err := Remotes(opts.Home)
		if err != nil {
			return nil, &Error{Code: CodeConfig, Thing: "remotes", Reason: err.Error(), Next: "fix the configuration with `fieldflash remote add`", Err: err}
		}
		switch len(remotes) {
		case 0:
			return nil, errorf(CodeConfig, "fetch", "configure the vendor's repository first: `fieldflash remote add NAME URL`", "no repository has a mirror configured")
		case 1:
			name = remotes[0].Repository
		default:
			var names []string
			for _, r := range remotes {
				names = append(names, r.Repository)
			}
			return nil, errorf(CodeConfig, "fetch", "pick one with --repository", "several repositories are configured (%s)", strings.Join(names, ", "))
		}
	}
	r, err := LoadRemote(opts.Home, name)
	if err != nil {
		return nil, err
	}
	s.remote = r
	found := false
	for _, p := range opts.Roots {
		if p.Name == name && !p.Demo {
			s.pinned, found = p, true
			break
		}
	}
	if !found {
		return nil, errorf(CodeConfig, "repository "+name, "pin the vendor's root first: `fieldflash trust add ROOT.json --name "+name+"`",
			"no root of that name is pinned on this machine, so nothing it serves could be trusted")
	}
	if s.cache, err = cache.Open(opts.Home); err != nil {
		return nil, &Error{Code: CodeIO, Thing: "cache", Reason: err.Error(), Next: "check that $FIELDFLASH_HOME is writable", Err: err}
	}
	if s.client, err = newClient(r, s.policy); err != nil {
		return nil, &Error{Code: CodeConfig, Thing: "repository " + name, Reason: err.Error(), Next: "fix it with `fieldflash remote add`", Err: err}
	}
	return s, nil
}

func (s *session) emit(e Event) {
	if s.opts.Events == nil {
		return
	}
	e.Time = s.now()
	s.opts.Events(e)
}

func (s *session) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.warnings = append(s.warnings, msg)
	s.mu.Unlock()
	s.emit(Event{Kind: EventWarning, Message: msg})
}

// markWrong takes a mirror out of this fetch: it served bytes or metadata that do not
// verify, and nothing more is asked of it.
func (s *session) markWrong(mirror string, err error) {
	s.mu.Lock()
	s.wrong[mirror] = err.Error()
	s.mu.Unlock()
	s.emit(Event{Kind: EventDropped, Mirror: mirror, Message: err.Error()})
}

// usable lists the mirrors not yet found wrong, in the configured order.
func (s *session) usable() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.remote.Mirrors {
		if _, bad := s.wrong[m]; !bad {
			out = append(out, m)
		}
	}
	return out
}

// backoffFor is the retry schedule of one file on one mirror: exponential with jitter.
func (s *session) backoffFor() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.policy.InitialDelay
	b.MaxInterval = s.policy.MaxDelay
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	return b
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rateMeter smooths a transfer rate over about two seconds, for rate and ETA.
type rateMeter struct {
	start     time.Time
	lastAt    time.Time
	lastBytes int64
	rate      float64
}

func (m *rateMeter) update(now time.Time, bytes int64) float64 {
	if m.start.IsZero() {
		m.start, m.lastAt, m.lastBytes = now, now, bytes
		return 0
	}
	dt := now.Sub(m.lastAt).Seconds()
	if dt < 0.05 {
		return m.rate
	}
	inst := float64(bytes-m.lastBytes) / dt
	const tau = 2.0
	alpha := 1 - math.Exp(-dt/tau)
	if m.rate == 0 {
		m.rate = inst
	} else {
		m.rate += alpha * (inst - m.rate)
	}
	m.lastAt, m.lastBytes = now, bytes
	return m.rate
}
