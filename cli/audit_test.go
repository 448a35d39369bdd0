package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// A support engineer's story: the technician's work shows in the log; the export
// verifies elsewhere; an edit, and a tail cut off below a noted head, are both caught.
func TestSupportListsExportsAndVerifiesTheAuditLog(t *testing.T) {
	home := t.TempDir()
	fieldflash(t, home, "", "trust", "add", corpus+"root.json", "--name", "acme", "--yes")
	fieldflash(t, home, "", "verify", corpus+"good_mcuboot.fwb")
	fieldflash(t, home, "", "verify", corpus+"good_basic.fwb", "--hardware", "acme-gw-r2")

	r := fieldflash(t, home, "", "audit", "list")
	if r.code != exitOK {
		t.Fatalf("audit list: %d %s", r.code, r.stderr)
	}
	for _, want := range []string{"trust-change    ok", `pinned root "acme"`, "verification    ok", "good_mcuboot.fwb [acme]", "verification    refused  (rollback)  acme-gw-r2  good_basic.fwb"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = fieldflash(t, home, "", "audit", "list", "--json", "--kind", "verification")
	var doc struct {
		OK      bool `json:"ok"`
		Entries []struct {
			Seq    uint64 `json:"seq"`
			Digest string `json:"bundle_digest"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || !doc.OK || len(doc.Entries) != 2 || doc.Entries[0].Digest == "" {
		t.Fatalf("list --json: %v %+v\n%s", err, doc, r.stdout)
	}

	export := filepath.Join(t.TempDir(), "site42.jsonl")
	r = fieldflash(t, home, "", "audit", "export", export)
	if r.code != exitOK || !strings.Contains(r.stdout, "exported 3 entries") {
		t.Fatalf("export: %d %s %s", r.code, r.stdout, r.stderr)
	}
	head := strings.Fields(strings.SplitN(r.stdout, "head ", 2)[1])[0]
	// On another machine (an empty home), with the head noted from the export.
	other := t.TempDir()
	if r = fieldflash(t, other, "", "audit", "verify", export, "--anchor", head); r.code != exitOK || !strings.Contains(r.stdout, "3 entries, the chain is intact and holds 1 anchors") {
		t.Fatalf("verify the export elsewhere: %d %s %s", r.code, r.stdout, r.stderr)
	}
	data, _ := os.ReadFile(export)
	edited := bytes.Replace(data, []byte(`"outcome":"refused"`), []byte(`"outcome":"ok"`), 1)
	os.WriteFile(export, edited, 0o600)
	if r = fieldflash(t, other, "", "audit", "verify", export); r.code != exitRefused || !strings.Contains(r.stderr, "entry 3 (line 3): its hash does not match its contents: it was edited") {
		t.Fatalf("verify an edited export: %d %s", r.code, r.stderr)
	}

	// Someone cuts the last entry off this laptop's own log: the remembered anchor of the
	// export catches it.
	log := filepath.Join(home, "audit", "audit.log")
	data, _ = os.ReadFile(log)
	lines := bytes.SplitAfter(data, []byte("\n"))
	os.WriteFile(log, bytes.Join(lines[:2], nil), 0o600)
	r = fieldflash(t, home, "", "audit", "verify")
	if r.code != exitRefused || !strings.Contains(r.stderr, "the log ends at entry 2, but entry 3 was anchored (exported to site42.jsonl)") {
		t.Fatalf("verify a cut log: %d %s", r.code, r.stderr)
	}
	if r = fieldflash(t, home, "", "audit", "anchor"); r.code != exitOK || !strings.HasPrefix(r.stdout, "2:") {
		t.Fatalf("anchor: %d %s", r.code, r.stdout)
	}
}

func TestAuditStatsSummarisesTheDemo(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	if r := fieldflash(t, home, "", "demo", "--json", "--baud", "0"); r.code != exitOK {
		t.Fatalf("demo: %d %s", r.code, r.stderr)
	}
	r := fieldflash(t, home, "", "audit", "stats", "--demo")
	for _, want := range []string{"100.0%    2 ok   0 failed of   2", "fieldflash-sim-smp", "fieldflash-sim-ymodem", "demo.fwb"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats lack %q:\n%s", want, r.stdout)
		}
	}
	// The demo's work stays in the demo's log.
	if r := fieldflash(t, home, "", "audit", "list"); !strings.Contains(r.stdout, "No entries.") {
		t.Errorf("real log after a demo:\n%s", r.stdout)
	}
}

func TestTheFirstInteractiveRunAsksAboutTelemetry(t *testing.T) {
	home := t.TempDir()
	cmd := exec.Command(binary, "verify", corpus+"good_basic.fwb")
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home, "FIELDFLASH_TELEMETRY=")
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	var mu sync.Mutex
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		asked := strings.Contains(out.String(), "[y/N]")
		mu.Unlock()
		if asked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no question on the terminal:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Write([]byte("y\n"))
	cmd.Wait()
	mu.Lock()
	screen := out.String()
	mu.Unlock()
	for _, want := range []string{"hardware model", "Never sent: your name, file names, paths, port", `"hardware": "acme-gw-r2"`, "telemetry on"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the question lacks %q:\n%s", want, screen)
		}
	}
	r := fieldflash(t, home, "", "telemetry", "status", "--json")
	if !strings.Contains(r.stdout, `"consent": "on"`) || !strings.Contains(r.stdout, `"answered_by": "question"`) {
		t.Fatalf("status after answering yes:\n%s", r.stdout)
	}
	// Asked once: the next run goes straight to work.
	if r := fieldflash(t, home, "", "audit", "list", "--kind", "setting-change"); !strings.Contains(r.stdout, "telemetry: not asked -> on (question)") {
		t.Fatalf("the answer is not audited:\n%s", r.stdout)
	}
}

func TestScriptsAnswerTheTelemetryQuestionWithoutATerminal(t *testing.T) {
	home := t.TempDir()
	// No terminal, no answer: no question, nothing decided.
	r := fieldflash(t, home, "", "verify", corpus+"good_basic.fwb")
	if strings.Contains(r.stderr, "[y/N]") {
		t.Fatalf("asked without a terminal:\n%s", r.stderr)
	}
	if r = fieldflash(t, home, "", "telemetry", "status"); !strings.Contains(r.stdout, "not asked yet") {
		t.Fatalf("status: %s", r.stdout)
	}
	cmd := exec.Command(binary, "verify", corpus+"good_basic.fwb")
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+home, "FIELDFLASH_TELEMETRY=off")
	cmd.Run()
	if r = fieldflash(t, home, "", "telemetry", "status"); !strings.Contains(r.stdout, "off (since") || !strings.Contains(r.stdout, "environment") {
		t.Fatalf("after FIELDFLASH_TELEMETRY=off: %s", r.stdout)
	}
	fieldflash(t, home, "", "--telemetry=on", "verify", corpus+"good_basic.fwb")
	if r = fieldflash(t, home, "", "telemetry", "status"); !strings.Contains(r.stdout, "on (agreed") || !strings.Contains(r.stdout, "command line") {
		t.Fatalf("after --telemetry=on: %s", r.stdout)
	}
	if r = fieldflash(t, home, "", "--telemetry=maybe", "verify", "x.fwb"); r.code != exitUsage {
		t.Fatalf("--telemetry=maybe: %d", r.code)
	}
}

func TestTelemetryOnQueuesSendsAndShowsWhatWasSent(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					got = append(got, lr.EventName)
				}
			}
		}
	}))
	defer srv.Close()
	home := t.TempDir()
	if r := fieldflash(t, home, "", "telemetry", "on", "--endpoint", "http://example.com:4318"); r.code != exitRefused || !strings.Contains(r.stderr, "only to this machine") {
		t.Fatalf("plain http to another host: %d %s", r.code, r.stderr)
	}
	if r := fieldflash(t, home, "", "telemetry", "on", "--endpoint", srv.URL); r.code != exitOK || !strings.Contains(r.stdout, "reports go to "+srv.URL) {
		t.Fatalf("telemetry on: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The collector goes away: the report waits.
	srv.Close()
	fieldflash(t, home, "", "verify", corpus+"good_basic.fwb")
	r := fieldflash(t, home, "", "telemetry", "show-queue", "--json")
	var ev struct {
		ID, Type, Outcome string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &ev); err != nil || ev.Type != "verification" || len(ev.ID) != 32 ||
		strings.Contains(r.stdout, "good_basic") || strings.Contains(r.stdout, home) {
		t.Fatalf("show-queue: %v\n%s", err, r.stdout)
	}
	if r = fieldflash(t, home, "", "telemetry", "status"); !strings.Contains(r.stdout, "1 event waiting, nothing sent yet") || !strings.Contains(r.stdout, "last error") {
		t.Fatalf("status while the collector is away:\n%s", r.stdout)
	}
	if r = fieldflash(t, home, "", "telemetry", "send", "--timeout", "3s"); r.code != exitEnv {
		t.Fatalf("send while away: %d %s", r.code, r.stderr)
	}
	if r = fieldflash(t, home, "", "telemetry", "off"); !strings.Contains(r.stdout, "1 waiting events deleted") {
		t.Fatalf("off: %s", r.stdout)
	}
	if r = fieldflash(t, home, "", "telemetry", "show-queue"); !strings.Contains(r.stdout, "Nothing waits") {
		t.Fatalf("queue after off: %s", r.stdout)
	}
	if r = fieldflash(t, home, "", "telemetry", "send"); r.code != exitRefused {
		t.Fatalf("send while off: %d", r.code)
	}
}

func TestTelemetryIsSentRightAfterTheCommand(t *testing.T) {
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collogspb.ExportLogsServiceRequest
		proto.Unmarshal(body, &req)
		mu.Lock()
		defer mu.Unlock()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					names = append(names, lr.EventName)
				}
			}
		}
	}))
	defer srv.Close()
	home := t.TempDir()
	fieldflash(t, home, "", "telemetry", "on", "--endpoint", srv.URL)
	fieldflash(t, home, "", "verify", corpus+"good_basic.fwb")
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 1 || names[0] != "fieldflash.verification" {
		t.Fatalf("collector got %v", names)
	}
	if r := fieldflash(t, home, "", "telemetry", "status"); !strings.Contains(r.stdout, "0 events waiting, last sent just now (1 sent in all)") {
		t.Fatalf("status:\n%s", r.stdout)
	}
}
