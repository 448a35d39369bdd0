// Package telemetry is fieldflash's privacy-first usage reporting: a durable queue of
// minimal events on disk (bbolt) and an uploader that sends them, once a connection comes
// back, as OpenTelemetry logs over OTLP/HTTP (protobuf, /v1/logs) to the configured
// endpoint, with backoff and jitter, honouring Retry-After, at least once, each event
// with a stable id the receiver can de-duplicate on.
//
// What an event holds is all it can hold: event type, outcome, error class, duration,
// from and to versions, hardware model, app version, the hour it happened, and a device
// pseudonym (a keyed hash computed by the caller). No operator names, paths, ports or
// addresses: the Event type has no field for them. Whether anything is queued at all is
// the caller's decision (the user's consent, kept in app/).
//
// docs/telemetry.md lists the fields and the wire format.
package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event types.
const (
	TypeVerification = "verification"
	TypeFlash        = "flash"
	TypeRecovery     = "recovery"
	TypeAnomaly      = "anomaly"
	// TypeDropped is made by the uploader: events the queue dropped (caps) since the
	// last upload, counted.
	TypeDropped = "queue-dropped"
)

// Event is one telemetry record: everything that may leave the laptop about one event.
type Event struct {
	// ID is random, made when the event is queued and never changed: a re-sent event
	// carries the same id, so the receiver can drop the duplicate.
	ID         string `json:"id"`
	Type       string `json:"type"`
	Outcome    string `json:"outcome"`
	ErrorClass string `json:"error_class,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Hardware   string `json:"hardware,omitempty"` // the model (hardware id), never a serial
	// Device is the device's pseudonym: HMAC-SHA256 of its identity under a key that
	// never leaves this installation.
	Device     string `json:"device,omitempty"`
	AppVersion string `json:"app_version,omitempty"`
	// Hour is when it happened, rounded down to the hour (UTC).
	Hour time.Time `json:"hour"`
	// Anomaly events: which rule fired and the counts it saw.
	Rule     string `json:"rule,omitempty"`
	Failures int    `json:"failures,omitempty"`
	Of       int    `json:"of,omitempty"`
}

// NewEventID returns a random event id: 32 lowercase hex digits.
func NewEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RoundHour is t rounded down to the hour, in UTC.
func RoundHour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// recordVersion is the queue's record format.
const recordVersion = 1

type record struct {
	V int `json:"v"`
	Event
}

// MaxRecordBytes bounds one queued record.
const MaxRecordBytes = 4096

const maxField = 256

// EncodeRecord is the queue's stored form of ev.
func EncodeRecord(ev Event) ([]byte, error) {
	if err := ev.check(); err != nil {
		return nil, err
	}
	return json.Marshal(record{V: recordVersion, Event: ev})
}

// DecodeRecord reads a queued record back, refusing anything this program would not
// have written (a damaged or foreign file).
func DecodeRecord(b []byte) (Event, error) {
	if len(b) > MaxRecordBytes {
		return Event{}, fmt.Errorf("queued record of %d bytes, longer than %d", len(b), MaxRecordBytes)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Event{}, fmt.Errorf("queued record: %v", err)
	}
	if r.V != recordVersion {
		return Event{}, fmt.Errorf("queued record of format %d; this fieldflash reads format %d", r.V, recordVersion)
	}
	if err := r.Event.check(); err != nil {
		return Event{}, err
	}
	return r.Event, nil
}

func (ev *Event) check() error {
	if len(ev.ID) != 32 || !isLowerHex(ev.ID) {
		return errors.New("event id is not 32 lowercase hex digits")
	}
	if ev.Type == "" {
		return errors.New("event has no type")
	}
	for _, s := range []string{ev.Type, ev.Outcome, ev.ErrorClass, ev.From, ev.To, ev.Hardware, ev.Device, ev.AppVersion, ev.Rule} {
		if len(s) > maxField {
			return fmt.Errorf("event field of %d bytes, longer than %d", len(s), maxField)
		}
	}
	if ev.Hour.IsZero() || !ev.Hour.Equal(RoundHour(ev.Hour)) {
		return errors.New("event time is not rounded to the hour")
	}
	if ev.DurationMS < 0 || ev.Failures < 0 || ev.Of < 0 {
		return errors.New("event has a negative count")
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
