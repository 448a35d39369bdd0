package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/app/telemetry"
)

// Telemetry consent, as TelemetrySettings.Consent holds it.
const (
	ConsentUnasked = ""    // never asked: nothing is queued or sent
	ConsentOn      = "on"  // the person agreed
	ConsentOff     = "off" // the person declined
)

// DefaultTelemetryEndpoint is the vendor's collector, set at build time with
// -ldflags "-X github.com/fieldflash/fieldflash/app.DefaultTelemetryEndpoint=https://…".
// Empty: events queue until an endpoint is configured.
var DefaultTelemetryEndpoint = ""

// TelemetrySettings are kept in $FIELDFLASH_HOME/telemetry/settings.json.
type TelemetrySettings struct {
	Consent string `json:"consent"`
	// AnsweredBy says how the consent was given: "question", "command", "environment".
	AnsweredBy string    `json:"answered_by,omitempty"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	// Endpoint overrides DefaultTelemetryEndpoint.
	Endpoint string `json:"endpoint,omitempty"`
	// CA is the pinned CA of the endpoint, PEM; empty: the system's roots.
	CA            string `json:"ca,omitempty"`
	RetentionDays int    `json:"retention_days,omitempty"`
	MaxEvents     int    `json:"max_events,omitempty"`
}

// EndpointURL is the endpoint in force.
func (s TelemetrySettings) EndpointURL() string {
	if s.Endpoint != "" {
		return s.Endpoint
	}
	return DefaultTelemetryEndpoint
}

// Limits are the queue's caps in force.
func (s TelemetrySettings) Limits() telemetry.Limits {
	return telemetry.Limits{MaxEvents: s.MaxEvents, MaxAge: time.Duration(s.RetentionDays) * 24 * time.Hour}
}

func telemetryDir(home string) string { return filepath.Join(home, "telemetry") }

// LoadTelemetrySettings reads the settings (zero settings when there are none yet).
func LoadTelemetrySettings(home string) (TelemetrySettings, error) {
	var s TelemetrySettings
	path := filepath.Join(telemetryDir(home), "settings.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("telemetry settings %s: %v", path, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return TelemetrySettings{}, fmt.Errorf("telemetry settings %s: %v; fix or remove the file (telemetry stays off meanwhile)", path, err)
	}
	switch s.Consent {
	case ConsentUnasked, ConsentOn, ConsentOff:
	default:
		return TelemetrySettings{}, fmt.Errorf("telemetry settings %s: consent %q is none of on, off", path, s.Consent)
	}
	return s, nil
}

func saveTelemetrySettings(home string, s TelemetrySettings) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(telemetryDir(home), "settings.json"), append(data, '\n'), 0o600)
}

func openQueue(home string, s TelemetrySettings) (*telemetry.Queue, error) {
	return telemetry.OpenQueue(filepath.Join(telemetryDir(home), "queue.db"), s.Limits(), nil)
}

// auditSetting records a setting change in the real (not demo) audit log.
func auditSetting(home, detail string) error {
	l, err := audit.Open(AuditPath(home))
	if err != nil {
		return err
	}
	defer l.Close()
	_, err = l.Append(audit.Entry{Kind: audit.KindSettingChange, AppVersion: Version, Operator: Operator(), Outcome: audit.OutcomeOK, Detail: detail})
	return err
}

// SetTelemetryConsent records the person's answer. how says where it came from
// ("question", "command", "environment"). Turning telemetry off deletes what was waiting:
// off means nothing is sent. It returns how many waiting events were deleted.
func SetTelemetryConsent(home string, on bool, how string) (deleted int, err error) {
	s, err := LoadTelemetrySettings(home)
	if err != nil {
		return 0, err
	}
	want := ConsentOff
	if on {
		want = ConsentOn
	}
	before := s.Consent
	if before == want {
		return 0, nil
	}
	s.Consent, s.AnsweredBy, s.AnsweredAt = want, how, time.Now().UTC()
	if err := saveTelemetrySettings(home, s); err != nil {
		return 0, err
	}
	if !on {
		if _, err := os.Stat(filepath.Join(telemetryDir(home), "queue.db")); err == nil {
			q, err := openQueue(home, s)
			if err != nil {
				return 0, err
			}
			if deleted, err = q.Clear(); err != nil {
				return 0, err
			}
		}
	}
	from := before
	if from == "" {
		from = "not asked"
	}
	detail := fmt.Sprintf("telemetry: %s -> %s (%s)", from, want, how)
	if deleted > 0 {
		detail += fmt.Sprintf("; %d waiting events deleted", deleted)
	}
	return deleted, auditSetting(home, detail)
}

// TelemetryConfig changes the endpoint, the pinned CA or the queue's caps; nil fields
// stay as they are.
type TelemetryConfig struct {
	Endpoint      *string // "" goes back to the built-in default
	CAFile        *string // "" unpins
	RetentionDays *int
	MaxEvents     *int
}

// ConfigureTelemetry checks and saves a configuration change and records it in the audit
// log.
func ConfigureTelemetry(home string, c TelemetryConfig) (TelemetrySettings, error) {
	s, err := LoadTelemetrySettings(home)
	if err != nil {
		return s, err
	}
	var changes []string
	if c.CAFile != nil {
		if *c.CAFile == "" {
			if s.CA != "" {
				changes = append(changes, "CA unpinned")
			}
			s.CA = ""
		} else {
			data, err := os.ReadFile(*c.CAFile)
			if err != nil {
				return s, fmt.Errorf("telemetry CA %s: %v", *c.CAFile, err)
			}
			if _, err := telemetry.NewEndpoint("https://check.invalid", data, 0); err != nil {
				return s, fmt.Errorf("telemetry CA %s: %v", *c.CAFile, err)
			}
			s.CA = string(data)
			changes = append(changes, "CA pinned from "+filepath.Base(*c.CAFile))
		}
	}
	if c.Endpoint != nil {
		if *c.Endpoint != "" {
			if _, err := telemetry.NewEndpoint(*c.Endpoint, []byte(s.CA), 0); err != nil {
				return s, err
			}
		}
		if s.Endpoint != *c.Endpoint {
			changes = append(changes, fmt.Sprintf("endpoint %q -> %q", s.Endpoint, *c.Endpoint))
		}
		s.Endpoint = *c.Endpoint
	}
	if c.RetentionDays != nil {
		if *c.RetentionDays < 1 || *c.RetentionDays > 3650 {
			return s, fmt.Errorf("retention of %d days: give 1 to 3650", *c.RetentionDays)
		}
		changes = append(changes, fmt.Sprintf("retention %d days", *c.RetentionDays))
		s.RetentionDays = *c.RetentionDays
	}
	if c.MaxEvents != nil {
		if *c.MaxEvents < 1 || *c.MaxEvents > 1000000 {
			return s, fmt.Errorf("a queue of %d events: give 1 to 1000000", *c.MaxEvents)
		}
		changes = append(changes, fmt.Sprintf("queue of at most %d events", *c.MaxEvents))
		s.MaxEvents = *c.MaxEvents
	}
	if len(changes) == 0 {
		return s, nil
	}
	if err := saveTelemetrySettings(home, s); err != nil {
		return s, err
	}
	return s, auditSetting(home, "telemetry: "+strings.Join(changes, ", "))
}

// TelemetryStatus is what a face shows about telemetry.
type TelemetryStatus struct {
	Settings TelemetrySettings     `json:"settings"`
	Endpoint string                `json:"endpoint,omitempty"`
	Pinned   bool                  `json:"ca_pinned"`
	Queue    telemetry.QueueStatus `json:"queue"`
	// Problem is what stops uploads (no endpoint, an endpoint that is refused).
	Problem string `json:"problem,omitempty"`
}

// GetTelemetryStatus reads the settings and the queue.
func GetTelemetryStatus(home string) (*TelemetryStatus, error) {
	s, err := LoadTelemetrySettings(home)
	if err != nil {
		return nil, err
	}
	st := &TelemetryStatus{Settings: s, Endpoint: s.EndpointURL(), Pinned: s.CA != ""}
	st.Settings.CA = ""
	if _, err := os.Stat(filepath.Join(telemetryDir(home), "queue.db")); err == nil {
		q, err := openQueue(home, s)
		if err != nil {
			return nil, err
		}
		if st.Queue, err = q.Status(); err != nil {
			return nil, err
		}
	} else {
		lim := s.Limits()
		st.Queue.Limits.MaxEvents, st.Queue.Limits.MaxAgeNS = lim.MaxEvents, int64(lim.MaxAge)
		if lim.MaxEvents == 0 {
			st.Queue.Limits.MaxEvents, st.Queue.Limits.MaxAgeNS = telemetry.DefaultMaxEvents, int64(telemetry.DefaultMaxAge)
		}
	}
	if st.Endpoint == "" {
		st.Problem = "no endpoint is configured: events wait until one is (`fieldflash telemetry config --endpoint URL`)"
	} else if _, err := telemetry.NewEndpoint(st.Endpoint, []byte(s.CA), 0); err != nil {
		st.Problem = err.Error()
	}
	return st, nil
}

// TelemetryQueue lists up to n waiting events, oldest first (n <= 0: all).
func TelemetryQueue(home string, n int) ([]telemetry.Queued, error) {
	s, err := LoadTelemetrySettings(home)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(telemetryDir(home), "queue.db")); err != nil {
		return nil, nil
	}
	q, err := openQueue(home, s)
	if err != nil {
		return nil, err
	}
	return q.List(n)
}

// NewTelemetryUploader prepares the uploader for the settings in force (the GUI runs it;
// SendTelemetry drains once). It refuses when telemetry is not on.
func NewTelemetryUploader(home string) (*telemetry.Uploader, error) {
	s, err := LoadTelemetrySettings(home)
	if err != nil {
		return nil, err
	}
	if s.Consent != ConsentOn {
		return nil, errors.New("telemetry is off: nothing is sent (`fieldflash telemetry on` to agree)")
	}
	if s.EndpointURL() == "" {
		return nil, errors.New("no telemetry endpoint is configured: `fieldflash telemetry config --endpoint URL`")
	}
	ep, err := telemetry.NewEndpoint(s.EndpointURL(), []byte(s.CA), 0)
	if err != nil {
		return nil, err
	}
	q, err := openQueue(home, s)
	if err != nil {
		return nil, err
	}
	return &telemetry.Uploader{Queue: q, Endpoint: ep, AppVersion: Version, AuditHead: func() string { return anchorForTelemetry(home) }}, nil
}

// SendTelemetry sends what waits, now, for at most limit (0: no limit).
func SendTelemetry(ctx context.Context, home string, limit time.Duration) (telemetry.Report, error) {
	u, err := NewTelemetryUploader(home)
	if err != nil {
		return telemetry.Report{}, err
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	return u.Drain(ctx)
}

// anchorForTelemetry is the audit head sent with an upload, remembered as an anchor.
func anchorForTelemetry(home string) string {
	h, err := AnchorAudit(home, "sent with telemetry")
	if err != nil || h.Seq == 0 {
		return ""
	}
	return h.String()
}

// TelemetryQuestion is the first-run question, in plain words, with the exact fields and
// an example record. The faces show it and record the answer with SetTelemetryConsent.
func TelemetryQuestion() string {
	ex := telemetry.Event{ID: "5b0e6c1f9a7d4e2c8b3a1f0e9d8c7b6a", Type: telemetry.TypeFlash, Outcome: audit.OutcomeOK, DurationMS: 48210,
		From: "7.1.0", To: "7.2.0", Hardware: "acme-gw-r2", Device: "3f0c9d2e1b4a5c6d7e8f9a0b1c2d3e4f", AppVersion: Version,
		Hour: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}
	data, _ := json.MarshalIndent(ex, "    ", "  ")
	return `May fieldflash send anonymous usage reports to your vendor, to find firmware that fails in the field?

  Each report says only: what happened (verification, flash, recovery, anomaly), how it
  ended (ok, refused, failed, canceled) and the error's class, how long it took, the
  firmware versions before and after, the hardware model, fieldflash's version, and the
  hour it happened. A device appears only as a keyed hash of its serial number, made with a
  key that never leaves this computer. Never sent: your name, file names, paths, port
  names, IP addresses or serial numbers. Reports wait on this computer and go when it is
  online; "fieldflash telemetry show-queue" shows them, "fieldflash telemetry off" stops
  and deletes them. Example:

    ` + string(data) + "\n"
}
