package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/app/telemetry"
	"github.com/fieldflash/fieldflash/assets"
)

func readLog(t *testing.T, path string) []AuditEntry {
	t.Helper()
	entries, rep, err := audit.ReadFile(path, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("audit log %s: %v %v", path, err, rep.Problem)
	}
	return entries
}

func TestAVerificationAndAFlashAreAuditedWithWhatSupportNeeds(t *testing.T) {
	s, v := demoSession(t)
	dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0})
	res := s.Flash(context.Background(), FlashRequest{Bundle: v, Port: dev.Path(), Protocol: "smp"}, nil)
	if res.Status != StatusOK {
		t.Fatalf("flash: %v", res.Err)
	}
	entries := readLog(t, AuditPath(s.Home))
	if len(entries) != 2 || entries[0].Kind != audit.KindVerification || entries[1].Kind != audit.KindFlash {
		t.Fatalf("entries %+v", entries)
	}
	ver, fl := entries[0], entries[1]
	if ver.Digest != v.Digest || ver.Repository != assets.DemoRepository || ver.Bundle != "demo.fwb" || ver.Outcome != audit.OutcomeOK || ver.Operator == "" {
		t.Fatalf("verification entry %+v", ver)
	}
	if fl.From != "1.0.0" || fl.To != "1.1.0" || fl.Outcome != audit.OutcomeOK || fl.Result != "confirmed" || fl.Hardware != SimHardwareSMP ||
		fl.Digest != v.Digest || fl.DurationMS <= 0 || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(fl.Device) {
		t.Fatalf("flash entry %+v", fl)
	}
	if strings.Contains(fl.Device, "pts") || fl.Device != DevicePseudonym(filepath.Dir(s.Home), deviceID(res.Before, "", dev.Path())) {
		t.Fatalf("device %q is not the keyed pseudonym of the device", fl.Device)
	}
	// A refusal is audited too, with its class.
	if _, err := s.Verify(filepath.Join(t.TempDir(), "missing.fwb"), VerifyOptions{}); err == nil {
		t.Fatal("a missing bundle verified")
	}
	entries = readLog(t, AuditPath(s.Home))
	if last := entries[len(entries)-1]; last.Outcome != audit.OutcomeFailed || last.ErrorClass != "io" {
		t.Fatalf("refusal entry %+v", last)
	}
	// The demo keeps its own log: the real one holds none of this.
	if _, err := os.Stat(AuditPath(filepath.Dir(s.Home))); err == nil {
		t.Fatal("demo work reached the real audit log")
	}
}

func TestTrustAndSettingChangesAreAudited(t *testing.T) {
	home := t.TempDir()
	t.Setenv(HomeEnv, home)
	ts, _ := OpenTrustStore(home)
	root := testRoot(t, "acme", true)
	if err := ts.Add("acme", root); err != nil {
		t.Fatal(err)
	}
	if err := ts.Remove("acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := SetTelemetryConsent(home, true, "command"); err != nil {
		t.Fatal(err)
	}
	ep := "http://127.0.0.1:4318"
	if _, err := ConfigureTelemetry(home, TelemetryConfig{Endpoint: &ep}); err != nil {
		t.Fatal(err)
	}
	entries := readLog(t, AuditPath(home))
	var got []string
	for _, e := range entries {
		got = append(got, string(e.Kind)+": "+e.Detail)
	}
	want := []string{`trust-change: pinned root "acme" v`, `trust-change: unpinned root "acme"`, "setting-change: telemetry: not asked -> on (command)",
		`setting-change: telemetry: endpoint "" -> "http://127.0.0.1:4318"`}
	if len(got) != len(want) {
		t.Fatalf("entries %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("entry %d = %q, want %q…", i+1, got[i], want[i])
		}
	}
}

// A collector on loopback that decodes what arrives with the official OTLP types.
type testCollector struct {
	mu      sync.Mutex
	records []map[string]string
	heads   []string
	t       *testing.T
	refuse  bool // fail the test on any request
}

func (c *testCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.refuse {
		c.t.Errorf("telemetry is off, yet a request arrived: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.t.Errorf("request does not decode: %v", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rl := range req.ResourceLogs {
		for _, kv := range rl.Resource.Attributes {
			if kv.Key == telemetry.AttrAuditHead {
				c.heads = append(c.heads, kv.Value.GetStringValue())
			}
		}
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				m := map[string]string{}
				for _, kv := range lr.Attributes {
					m[kv.Key] = kv.Value.GetStringValue()
				}
				c.records = append(c.records, m)
			}
		}
	}
}

func realSession(t *testing.T, endpoint string) (home string, s *Session) {
	home = t.TempDir()
	t.Setenv(HomeEnv, home)
	if endpoint != "" {
		if _, err := ConfigureTelemetry(home, TelemetryConfig{Endpoint: &endpoint}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenSession(false)
	if err != nil {
		t.Fatal(err)
	}
	return home, s
}

func TestTelemetryOffSendsNothingAndQueuesNothing(t *testing.T) {
	c := &testCollector{t: t, refuse: true}
	srv := httptest.NewServer(c)
	defer srv.Close()
	for _, consent := range []string{ConsentUnasked, ConsentOff} {
		home, s := realSession(t, srv.URL)
		if consent == ConsentOff {
			SetTelemetryConsent(home, false, "question")
		}
		path, _ := DemoBundlePath(home)
		s.Verify(path, VerifyOptions{}) // refused outside demo mode: an event, were telemetry on
		if q, _ := TelemetryQueue(home, 0); len(q) != 0 {
			t.Fatalf("consent %q: %d events queued", consent, len(q))
		}
		if _, err := SendTelemetry(context.Background(), home, time.Second); err == nil || !strings.Contains(err.Error(), "telemetry is off") {
			t.Fatalf("consent %q: send: %v", consent, err)
		}
		if _, err := NewTelemetryUploader(home); err == nil {
			t.Fatalf("consent %q: an uploader was made", consent)
		}
	}
	// Turning it off deletes what waited.
	home, s := realSession(t, srv.URL)
	SetTelemetryConsent(home, true, "command")
	path, _ := DemoBundlePath(home)
	s.Verify(path, VerifyOptions{})
	s.Verify(path, VerifyOptions{})
	if n, err := SetTelemetryConsent(home, false, "command"); n != 2 || err != nil {
		t.Fatalf("off deleted %d (%v), want the 2 waiting", n, err)
	}
	if q, _ := TelemetryQueue(home, 0); len(q) != 0 {
		t.Fatalf("after off: %d queued", len(q))
	}
}

func TestTelemetryOnSendsOnlyMinimalFieldsAndAnchorsTheAuditLog(t *testing.T) {
	c := &testCollector{t: t}
	srv := httptest.NewServer(c)
	defer srv.Close()
	home, s := realSession(t, srv.URL)
	SetTelemetryConsent(home, true, "environment")
	path, _ := DemoBundlePath(home)
	if _, err := s.Verify(path, VerifyOptions{}); err == nil {
		t.Fatal("the demo bundle verified outside demo mode")
	}
	rep, err := SendTelemetry(context.Background(), home, 10*time.Second)
	if err != nil || rep.Sent != 1 {
		t.Fatalf("send %+v %v", rep, err)
	}
	r := c.records[0]
	if r[telemetry.AttrType] != "verification" || r[telemetry.AttrOutcome] != "refused" || r[telemetry.AttrErrorClass] == "" {
		t.Fatalf("record %v", r)
	}
	for k, v := range r {
		if strings.Contains(v, home) || strings.Contains(v, "demo.fwb") || strings.Contains(v, Operator()) && len(Operator()) > 3 {
			t.Fatalf("attribute %s = %q holds a path, a file name or the operator", k, v)
		}
	}
	head := readLog(t, AuditPath(home))
	last := head[len(head)-1]
	if len(c.heads) != 1 || c.heads[0] != (AuditHead{Seq: last.Seq, Hash: last.Hash}).String() {
		t.Fatalf("audit head sent %v, log head %d:%s", c.heads, last.Seq, last.Hash)
	}
	anchors, _ := RememberedAnchors(home)
	if len(anchors) != 1 || anchors[0].Source != "sent with telemetry" {
		t.Fatalf("anchors %+v", anchors)
	}
	st, _ := GetTelemetryStatus(home)
	if st.Queue.Waiting != 0 || st.Queue.Sent.Total != 1 || st.Problem != "" {
		t.Fatalf("status %+v", st)
	}
}

func TestAFailureSpikeWarnsBeforeTheNextUpdateOfThatModel(t *testing.T) {
	s, v := demoSession(t)
	// Synthetic history: three failed updates of the model within the last hour.
	l, err := audit.Open(AuditPath(s.Home))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Append(audit.Entry{Kind: audit.KindFlash, Time: time.Now().Add(-time.Duration(30-i) * time.Minute), Hardware: SimHardwareSMP,
			Outcome: audit.OutcomeFailed, ErrorClass: "check"})
	}
	l.Close()
	for run := range 2 {
		dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0})
		var evs events
		res := s.Flash(context.Background(), FlashRequest{Bundle: v, Port: dev.Path(), Protocol: "smp"}, evs.add)
		if res.Status != StatusOK {
			t.Fatalf("flash: %v", res.Err)
		}
		kinds := evs.kinds(dev.Path())
		i := slices.Index(kinds, KindAnomaly)
		if i < 0 || kinds[i-1] != KindIdentified || kinds[i+1] != KindPlanned {
			t.Fatalf("run %d: kinds %v; want the anomaly between identified and planned", run, kinds)
		}
		for _, ev := range evs.all {
			if ev.Kind == KindAnomaly && (ev.Warning == nil || ev.Warning.Rule != audit.RuleBurst || !strings.Contains(ev.Message, "3 updates of fieldflash-sim-smp failed in the last hour")) {
				t.Fatalf("warning %+v %q", ev.Warning, ev.Message)
			}
		}
	}
	n := 0
	for _, e := range readLog(t, AuditPath(s.Home)) {
		if e.Kind == audit.KindAnomaly {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d anomaly-warning entries after two warned updates within a day, want 1", n)
	}
}

func TestDesktopSettingChangesAreAudited(t *testing.T) {
	home := t.TempDir()
	set := DefaultSettings()
	set.Mode, set.Baud = ModeSimple, 921600
	if err := SaveSettings(home, set); err != nil {
		t.Fatal(err)
	}
	if err := SaveSettings(home, set); err != nil { // nothing changed: nothing recorded
		t.Fatal(err)
	}
	entries := readLog(t, AuditPath(home))
	if len(entries) != 1 || entries[0].Kind != audit.KindSettingChange || entries[0].Detail != "mode: technician -> simple, baud: 115200 -> 921600" {
		t.Fatalf("entries %+v", entries)
	}
}
