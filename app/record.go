package app

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/app/telemetry"
)

// Version is fieldflash's version as the faces were built with it; it goes into every
// audit entry and telemetry event. The CLI sets it from its -ldflags version.
var Version = "dev"

// recorder writes what a session did: an audit entry always, a telemetry event when the
// person agreed (never in demo mode). A failure to record is reported, never a reason to
// fail the operation itself: the device was already updated.
type recorder struct {
	home      string // the real $FIELDFLASH_HOME (installation key, telemetry)
	auditPath string // this session's log (demo mode keeps its own)
	demo      bool

	mu       sync.Mutex
	log      *audit.Log
	warnings []string
	warned   map[string]bool
}

func newRecorder(home, work string, demo bool) *recorder {
	return &recorder{home: home, auditPath: AuditPath(work), demo: demo, warned: map[string]bool{}}
}

// AuditPath is the audit log under a session's home.
func AuditPath(home string) string { return filepath.Join(home, "audit", "audit.log") }

func (r *recorder) openLog() (*audit.Log, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log != nil {
		return r.log, nil
	}
	l, err := audit.Open(r.auditPath)
	if err != nil {
		return nil, err
	}
	r.log = l
	for _, f := range l.Fixes() {
		r.warnings = append(r.warnings, "audit log: "+f.Text)
	}
	return l, nil
}

func (r *recorder) warn(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.warned[s] {
		r.warned[s] = true
		r.warnings = append(r.warnings, s)
	}
}

// takeWarnings returns what went wrong while recording since the last call.
func (r *recorder) takeWarnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.warnings
	r.warnings = nil
	return w
}

// audit appends e (operator and version filled in).
func (r *recorder) audit(e audit.Entry) {
	e.AppVersion = Version
	e.Operator = Operator()
	l, err := r.openLog()
	if err == nil {
		_, err = l.Append(e)
	}
	if err != nil {
		r.warn(fmt.Sprintf("could not write the audit log: %v", err))
		return
	}
	for _, f := range l.Fixes() {
		r.warn("audit log: " + f.Text)
	}
}

// queue adds ev to the telemetry queue if telemetry is on (and this is no demo).
func (r *recorder) queue(ev telemetry.Event) {
	if r.demo {
		return
	}
	set, err := LoadTelemetrySettings(r.home)
	if err != nil || set.Consent != ConsentOn {
		return
	}
	q, err := openQueue(r.home, set)
	if err == nil {
		ev.ID = telemetry.NewEventID()
		ev.AppVersion = Version
		ev.Hour = telemetry.RoundHour(time.Now())
		err = q.Add(ev)
	}
	if err != nil {
		r.warn(fmt.Sprintf("could not queue telemetry: %v", err))
	}
}

func (r *recorder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log != nil {
		r.log.Close()
		r.log = nil
	}
}

// Operator is the local account name of the person at the laptop.
func Operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		name := u.Username
		if i := strings.LastIndexByte(name, '\\'); i >= 0 { // DOMAIN\name on Windows
			name = name[i+1:]
		}
		return name
	}
	for _, v := range []string{"USER", "USERNAME", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "unknown"
}

// installationKey is the key device pseudonyms are made with: 32 random bytes in
// $FIELDFLASH_HOME/installation.key, made on first use, never sent anywhere.
func installationKey(home string) ([]byte, error) {
	path := filepath.Join(home, "installation.key")
	data, err := os.ReadFile(path)
	if err == nil && len(data) == 32 {
		return data, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("installation key %s: %v", path, err)
	}
	if err == nil {
		return nil, fmt.Errorf("installation key %s: %d bytes, not 32; remove it to make a new one (device pseudonyms will change)", path, len(data))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("installation key %s: %v", path, err)
	}
	return key, nil
}

// DevicePseudonym is the name a device goes by in the audit log and in telemetry: the
// first 16 bytes (hex) of HMAC-SHA256 of its identity (hardware id and serial number, or
// port) under this installation's key. "" when the key cannot be had.
func DevicePseudonym(home, device string) string {
	if device == "" {
		return ""
	}
	key, err := installationKey(home)
	if err != nil {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(device))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Warnings returns, once, what went wrong while this session recorded its work (an audit
// log that could not be written, a torn record found and noted): the faces show them.
func (s *Session) Warnings() []string { return s.rec.takeWarnings() }

// Close releases the session's audit log.
func (s *Session) Close() { s.rec.close() }

// outcomeOf names a FlashResult's ending in the audit log's words.
func outcomeOf(st Status) string {
	switch st {
	case StatusOK:
		return audit.OutcomeOK
	case StatusRefused:
		return audit.OutcomeRefused
	case StatusCanceled:
		return audit.OutcomeCanceled
	}
	return audit.OutcomeFailed
}

func (s *Session) recordVerification(path string, v *Verified, err error, took time.Duration, opts VerifyOptions) {
	e := audit.Entry{Kind: audit.KindVerification, Bundle: filepath.Base(path), DurationMS: took.Milliseconds(),
		Outcome: audit.OutcomeOK, Hardware: opts.Hardware}
	if v != nil {
		e.Digest, e.Repository = v.Digest, v.Repository
	}
	if err != nil {
		e.Outcome, e.ErrorClass = audit.OutcomeRefused, ErrorCode(err)
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Code == CodeIO {
			e.Outcome = audit.OutcomeFailed
		}
	}
	s.rec.audit(e)
	s.rec.queue(telemetry.Event{Type: telemetry.TypeVerification, Outcome: e.Outcome, ErrorClass: e.ErrorClass,
		DurationMS: e.DurationMS, Hardware: opts.Hardware})
}

func (s *Session) recordFlash(kind audit.Kind, req FlashRequest, res *FlashResult, took time.Duration) {
	e := audit.Entry{Kind: kind, Target: res.Target, To: res.Version, Outcome: outcomeOf(res.Status), DurationMS: took.Milliseconds()}
	if v := req.Bundle; v != nil {
		e.Bundle, e.Digest, e.Repository = filepath.Base(v.Bundle), v.Digest, v.Repository
	}
	e.Hardware = res.Hardware
	if e.Hardware == "" && res.Before != nil {
		e.Hardware = res.Before.HardwareID
	}
	if e.Hardware == "" {
		e.Hardware = req.Hardware
	}
	if res.Before != nil {
		e.From = RunningVersion(res.Before)
		e.Device = DevicePseudonym(s.rec.home, deviceID(res.Before, req.Hardware, res.Port))
	}
	if res.Outcome != nil {
		e.Result = string(res.Outcome.Result)
	}
	if res.Err != nil {
		e.ErrorClass = ErrorCode(res.Err)
	}
	s.rec.audit(e)
	typ := telemetry.TypeFlash
	if kind == audit.KindRecovery {
		typ = telemetry.TypeRecovery
	}
	s.rec.queue(telemetry.Event{Type: typ, Outcome: e.Outcome, ErrorClass: e.ErrorClass, DurationMS: e.DurationMS,
		From: e.From, To: e.To, Hardware: e.Hardware, Device: e.Device})
}

// HealthWarning is a spike of failures for one hardware model (docs/audit.md § Anomalies).
type HealthWarning = audit.Anomaly

// KindAnomaly: failures of this hardware model spiked lately; Warning says how. It comes
// right after KindIdentified, before anything is planned or written.
const KindAnomaly Kind = "anomaly"

// recentHistory is how much of the end of the audit log the anomaly rules read: some
// 7,000 entries.
const recentHistory = 4 << 20

// anomalyRepeat is how long one model's anomaly is not recorded or queued again.
const anomalyRepeat = 24 * time.Hour

// CheckHealth looks at this session's audit history of a hardware model and returns a
// warning when its failures spiked (nil when all is well). A new warning is recorded in
// the audit log and, with telemetry on, queued as an anomaly event.
func (s *Session) CheckHealth(hardware string) *HealthWarning {
	if hardware == "" {
		return nil
	}
	// The recent end of the log is enough for the rules (the model's last updates, the
	// last hour) and keeps the check quick however long the log has grown.
	entries, err := audit.ReadRecent(s.rec.auditPath, recentHistory)
	if err != nil {
		return nil
	}
	now := time.Now()
	a := audit.FindAnomaly(entries, hardware, now, audit.DefaultThresholds)
	if a == nil {
		return nil
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if now.Sub(e.Time) > anomalyRepeat {
			break
		}
		if e.Kind == audit.KindAnomaly && e.Hardware == hardware && e.Result == a.Rule {
			return a // already recorded and sent
		}
	}
	s.rec.audit(audit.Entry{Kind: audit.KindAnomaly, Hardware: hardware, Outcome: audit.OutcomeOK, Result: a.Rule, Detail: a.Text})
	s.rec.queue(telemetry.Event{Type: telemetry.TypeAnomaly, Hardware: hardware, Rule: a.Rule, Failures: a.Failures, Of: a.Of})
	return a
}
