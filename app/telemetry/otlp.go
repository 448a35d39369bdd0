package telemetry

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Attribute keys on the wire (docs/telemetry.md). log.record.uid is OpenTelemetry's
// semantic-convention key for a log record's unique id: the de-duplication key.
const (
	AttrID         = "log.record.uid"
	AttrType       = "fieldflash.event"
	AttrOutcome    = "fieldflash.outcome"
	AttrErrorClass = "fieldflash.error_class"
	AttrDuration   = "fieldflash.duration_ms"
	AttrFrom       = "fieldflash.version.from"
	AttrTo         = "fieldflash.version.to"
	AttrHardware   = "fieldflash.hardware"
	AttrDevice     = "fieldflash.device"
	AttrAppVersion = "fieldflash.app_version"
	AttrRule       = "fieldflash.anomaly.rule"
	AttrFailures   = "fieldflash.anomaly.failures"
	AttrOf         = "fieldflash.anomaly.of"
	AttrDropCount  = "fieldflash.dropped.by_count"
	AttrDropAge    = "fieldflash.dropped.by_age"
	AttrDropBad    = "fieldflash.dropped.undecodable"
	// AttrAuditHead is the local audit log's head (SEQ:HASH), sent as an anchor so a
	// log cut short afterwards is noticed.
	AttrAuditHead = "fieldflash.audit.head"
)

// ScopeName names the instrumentation scope of every record.
const ScopeName = "fieldflash.telemetry"

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// logRecord is ev as an OpenTelemetry log record: the time is the event's hour (observed
// time too: the exact moment of the upload says nothing the receiver needs).
func logRecord(ev Event) *logspb.LogRecord {
	sev, sevText := logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
	if ev.Outcome == "failed" || ev.Type == TypeAnomaly || ev.Type == TypeDropped {
		sev, sevText = logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	}
	t := uint64(ev.Hour.UnixNano())
	attrs := []*commonpb.KeyValue{str(AttrID, ev.ID), str(AttrType, ev.Type)}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, str(k, v))
		}
	}
	add(AttrOutcome, ev.Outcome)
	add(AttrErrorClass, ev.ErrorClass)
	if ev.DurationMS > 0 {
		attrs = append(attrs, num(AttrDuration, ev.DurationMS))
	}
	add(AttrFrom, ev.From)
	add(AttrTo, ev.To)
	add(AttrHardware, ev.Hardware)
	add(AttrDevice, ev.Device)
	add(AttrAppVersion, ev.AppVersion)
	if ev.Type == TypeAnomaly {
		add(AttrRule, ev.Rule)
		attrs = append(attrs, num(AttrFailures, int64(ev.Failures)), num(AttrOf, int64(ev.Of)))
	}
	body := ev.Type
	if ev.Outcome != "" {
		body += " " + ev.Outcome
	}
	return &logspb.LogRecord{TimeUnixNano: t, ObservedTimeUnixNano: t, SeverityNumber: sev, SeverityText: sevText,
		EventName: "fieldflash." + ev.Type, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: body}}, Attributes: attrs}
}

func droppedRecord(d Dropped, now time.Time) *logspb.LogRecord {
	since := d.Since
	if since.IsZero() {
		since = RoundHour(now)
	}
	r := logRecord(Event{ID: d.ID, Type: TypeDropped, Hour: since})
	r.Attributes = append(r.Attributes, num(AttrDropCount, int64(d.ByCount)), num(AttrDropAge, int64(d.ByAge)), num(AttrDropBad, int64(d.Undecodable)))
	r.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: fmt.Sprintf("%d queued events dropped before they could be sent", d.Total())}}
	return r
}

// EncodeRequest is the body of one upload: an OTLP ExportLogsServiceRequest (whose wire
// form is that of LogsData: field 1, the resource logs) holding evs and, when it counts
// anything, the dropped report.
func EncodeRequest(evs []Event, dropped *Dropped, appVersion, auditHead string, now time.Time) ([]byte, error) {
	res := []*commonpb.KeyValue{str("service.name", "fieldflash")}
	if appVersion != "" {
		res = append(res, str("service.version", appVersion))
	}
	if auditHead != "" {
		res = append(res, str(AttrAuditHead, auditHead))
	}
	recs := make([]*logspb.LogRecord, 0, len(evs)+1)
	for _, ev := range evs {
		recs = append(recs, logRecord(ev))
	}
	if dropped != nil && dropped.Total() > 0 && dropped.ID != "" {
		recs = append(recs, droppedRecord(*dropped, now))
	}
	data := &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: res},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: ScopeName, Version: "1"}, LogRecords: recs}},
	}}}
	return proto.Marshal(data)
}

// Verdict is what the uploader makes of the endpoint's answer.
type Verdict struct {
	Delivered bool // the batch was taken (perhaps partly: Rejected)
	// Rejected counts records the endpoint refused for good; with Delivered false and
	// Drop set, the whole batch is refused and must not be sent again (400).
	Rejected int64
	Drop     bool
	Retry    bool          // try again later: the batch stays queued
	After    time.Duration // the endpoint's Retry-After, 0 when it gave none
	Shrink   bool          // 413: send fewer records at a time
	Message  string        // the endpoint's own words, if any (not escaped)
}

// MaxRetryAfter caps a Retry-After: an endpoint asking for a day is asked again sooner.
const MaxRetryAfter = 6 * time.Hour

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 10

// Judge reads an OTLP/HTTP response (RFC and OTLP spec: 2xx success with an optional
// partial success; 429, 502, 503, 504 retryable, with Retry-After; 400 not retryable).
// A 5xx other than those is retried too (a collector's crash is usually passing), and
// 401, 403 and 404 keep the batch and retry slowly: they mean a misconfigured endpoint,
// which a person fixes, not data to throw away.
func Judge(status int, retryAfter string, body []byte, now time.Time) Verdict {
	if len(body) > maxResponse {
		body = body[:maxResponse]
	}
	switch {
	case status >= 200 && status < 300:
		rejected, msg := decodePartialSuccess(body)
		return Verdict{Delivered: true, Rejected: rejected, Message: msg}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		status == http.StatusBadGateway || status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return Verdict{Retry: true, After: ParseRetryAfter(retryAfter, now), Message: decodeStatusMessage(body)}
	case status == http.StatusRequestEntityTooLarge:
		return Verdict{Retry: true, Shrink: true, Message: decodeStatusMessage(body)}
	case status == http.StatusBadRequest:
		return Verdict{Drop: true, Message: decodeStatusMessage(body)}
	case status >= 500:
		return Verdict{Retry: true, After: ParseRetryAfter(retryAfter, now), Message: decodeStatusMessage(body)}
	}
	return Verdict{Retry: true, Message: decodeStatusMessage(body)}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110
// § 10.2.3), capped at MaxRetryAfter; 0 when absent or unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, 0), MaxRetryAfter)
}

// decodePartialSuccess reads ExportLogsServiceResponse{partial_success = 1
// {rejected_log_records = 1, error_message = 2}}. Anything unreadable counts as a full
// success: the status code said so.
func decodePartialSuccess(b []byte) (int64, string) {
	ps, ok := field(b, 1, protowire.BytesType)
	if !ok {
		return 0, ""
	}
	var rejected int64
	if v, ok := field(ps, 1, protowire.VarintType); ok {
		n, _ := protowire.ConsumeVarint(v)
		rejected = max(int64(n), 0)
	}
	msg := ""
	if v, ok := field(ps, 2, protowire.BytesType); ok {
		msg = string(v)
	}
	return rejected, msg
}

// decodeStatusMessage reads google.rpc.Status{message = 2}, what an OTLP endpoint sends
// with an error; a plain-text body is taken as it is.
func decodeStatusMessage(b []byte) string {
	if v, ok := field(b, 2, protowire.BytesType); ok {
		return limit(string(v))
	}
	s := strings.TrimSpace(string(b))
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFD }) {
		return limit(s)
	}
	return ""
}

func limit(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// field returns the value of the last occurrence of field num with type typ in a
// protobuf message (for bytes: the contents; for a varint: its encoding), or false when
// absent or when the message does not parse.
func field(b []byte, num protowire.Number, typ protowire.Type) ([]byte, bool) {
	var out []byte
	found := false
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, t, b)
		if vl < 0 {
			return nil, false
		}
		if n == num && t == typ {
			switch t {
			case protowire.BytesType:
				v, _ := protowire.ConsumeBytes(b)
				out = v
			default:
				out = b[:vl]
			}
			found = true
		}
		b = b[vl:]
	}
	return out, found
}

var errNoEndpoint = errors.New("no telemetry endpoint is configured")
