package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "telemetry", summary: "turn anonymous usage reports on or off, see what waits and what was sent", run: cmdTelemetry})
}

const telemetryHelp = `
Telemetry is off until you agree. When on, fieldflash queues a minimal report of each
verification, flash, recovery and anomaly warning (docs/telemetry.md lists every field)
and sends it to your vendor's collector when this computer is online. Off means nothing
is queued or sent; turning it off deletes what was waiting.

  fieldflash telemetry on [--endpoint URL] [--ca FILE]
  fieldflash telemetry off
  fieldflash telemetry status [--json]
  fieldflash telemetry show-queue [--json] [--limit N]
  fieldflash telemetry send
  fieldflash telemetry config [--endpoint URL] [--ca FILE | --no-ca] [--retention DAYS] [--max-events N]

The first interactive run of fieldflash asks. Scripts and CI answer with
FIELDFLASH_TELEMETRY=on|off or "fieldflash --telemetry=on|off COMMAND".

Exit codes: 0 done, 1 refused (telemetry is off, a bad endpoint or CA), 2 usage,
3 environment ($FIELDFLASH_HOME, the collector could not be reached).`

func cmdTelemetry(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		out := e.stdout
		if len(args) == 0 {
			out = e.stderr
		}
		fmt.Fprintf(out, "Usage: fieldflash telemetry on|off|status|show-queue|send|config ...\n%s\n", telemetryHelp)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, false, err)
	}
	switch args[0] {
	case "on":
		return telemetryOn(e, home, args[1:])
	case "off":
		return telemetryOff(e, home, args[1:])
	case "status":
		return telemetryStatus(e, home, args[1:])
	case "show-queue":
		return telemetryShowQueue(e, home, args[1:])
	case "send":
		return telemetrySend(e, home, args[1:])
	case "config":
		return telemetryConfig(e, home, args[1:])
	}
	fmt.Fprintf(e.stderr, "fieldflash telemetry: unknown subcommand %q; use on, off, status, show-queue, send or config\n", args[0])
	return exitUsage
}

// configFlags are the options of `telemetry on` and `telemetry config`.
type configFlags struct {
	endpoint, ca         *string
	noCA                 *bool
	retention, maxEvents *int
}

func addConfigFlags(fs *flag.FlagSet, all bool) *configFlags {
	c := &configFlags{
		endpoint: fs.String("endpoint", "", "the collector's OTLP/HTTP `URL` (https, or http to loopback), e.g. https://collector.example.com:4318"),
		ca:       fs.String("ca", "", "pin the collector's CA: a PEM `FILE`; only certificates it issued are accepted"),
	}
	if all {
		c.noCA = fs.Bool("no-ca", false, "unpin the CA (use the system's roots)")
		c.retention = fs.Int("retention", 0, "keep waiting events at most `DAYS` days (default 30)")
		c.maxEvents = fs.Int("max-events", 0, "keep at most `N` waiting events (default 10000)")
	}
	return c
}

func (c *configFlags) config(set map[string]bool) app.TelemetryConfig {
	var tc app.TelemetryConfig
	if set["endpoint"] {
		tc.Endpoint = c.endpoint
	}
	if set["ca"] {
		tc.CAFile = c.ca
	}
	if c.noCA != nil && *c.noCA {
		empty := ""
		tc.CAFile = &empty
	}
	if set["retention"] {
		tc.RetentionDays = c.retention
	}
	if set["max-events"] {
		tc.MaxEvents = c.maxEvents
	}
	return tc
}

func telemetryOn(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry on", "[--endpoint URL] [--ca FILE]", "Agree to send anonymous usage reports.")
	c := addConfigFlags(fs, false)
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if code := applyConfig(e, home, c, visited(fs)); code != exitOK {
		return code
	}
	if _, err := app.SetTelemetryConsent(home, true, "command"); err != nil {
		return reportEnv(e, false, err)
	}
	st, err := app.GetTelemetryStatus(home)
	if err != nil {
		return reportEnv(e, false, err)
	}
	fmt.Fprintln(e.stdout, "✔ telemetry on: each verification, flash and recovery is reported as docs/telemetry.md lists")
	if st.Problem != "" {
		fmt.Fprintln(e.stdout, "  ⚠", st.Problem)
	} else {
		fmt.Fprintf(e.stdout, "  reports go to %s when this computer is online\n", st.Endpoint)
	}
	return exitOK
}

func applyConfig(e *env, home string, c *configFlags, set map[string]bool) int {
	tc := c.config(set)
	if tc == (app.TelemetryConfig{}) {
		return exitOK
	}
	if _, err := app.ConfigureTelemetry(home, tc); err != nil {
		fmt.Fprintln(e.stderr, "✘ refused:", err)
		return exitRefused
	}
	return exitOK
}

func telemetryOff(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry off", "", "Stop usage reports; delete what waits.")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	n, err := app.SetTelemetryConsent(home, false, "command")
	if err != nil {
		return reportEnv(e, false, err)
	}
	fmt.Fprint(e.stdout, "✔ telemetry off: nothing is queued or sent")
	if n > 0 {
		fmt.Fprintf(e.stdout, "; %d waiting events deleted", n)
	}
	fmt.Fprintln(e.stdout)
	return exitOK
}

func telemetryConfig(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry config", "[--endpoint URL] [--ca FILE | --no-ca] [--retention DAYS] [--max-events N]",
		"Change where reports go and how long they wait. Every change is recorded in the audit log.")
	c := addConfigFlags(fs, true)
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	set := visited(fs)
	if len(set) == 0 {
		fmt.Fprintln(e.stderr, "fieldflash telemetry config: give at least one option (see --help)")
		return exitUsage
	}
	if code := applyConfig(e, home, c, set); code != exitOK {
		return code
	}
	return telemetryStatus(e, home, nil)
}

func telemetryStatus(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry status", "[--json]", "Say whether telemetry is on, what waits and what was sent.")
	jsonOut := fs.Bool("json", false, "print as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	st, err := app.GetTelemetryStatus(home)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, st)
		return exitOK
	}
	w := e.stdout
	switch st.Settings.Consent {
	case app.ConsentOn:
		fmt.Fprintf(w, "telemetry  on (agreed %s, %s)\n", st.Settings.AnsweredAt.Local().Format("2006-01-02 15:04"), st.Settings.AnsweredBy)
	case app.ConsentOff:
		fmt.Fprintf(w, "telemetry  off (since %s, %s): nothing is queued or sent\n", st.Settings.AnsweredAt.Local().Format("2006-01-02 15:04"), st.Settings.AnsweredBy)
	default:
		fmt.Fprintln(w, "telemetry  off: not asked yet (nothing is queued or sent); `fieldflash telemetry on` to agree")
	}
	if st.Endpoint != "" {
		pin := "system CAs"
		if st.Pinned {
			pin = "CA pinned"
		}
		fmt.Fprintf(w, "endpoint   %s (%s)\n", clean(st.Endpoint), pin)
	}
	fmt.Fprintf(w, "queue      %s\n", queueLine(st, time.Now()))
	if d := st.Queue.Dropped; d.Total() > 0 {
		fmt.Fprintf(w, "dropped    %d not yet reported (%d queue full, %d older than %d days, %d damaged); the next upload says so\n",
			d.Total(), d.ByCount, d.ByAge, st.Queue.Limits.MaxAgeNS/int64(24*time.Hour), d.Undecodable)
	}
	fmt.Fprintf(w, "limits     at most %d events, %d days\n", st.Queue.Limits.MaxEvents, st.Queue.Limits.MaxAgeNS/int64(24*time.Hour))
	if s := st.Queue.Sent; s.LastError != "" && s.LastAttempt.After(s.LastSent) {
		fmt.Fprintf(w, "last error %s (%s)\n", clean(s.LastError), ago(s.LastAttempt, time.Now()))
	}
	if st.Problem != "" && st.Settings.Consent == app.ConsentOn {
		fmt.Fprintln(w, "⚠", st.Problem)
	}
	return exitOK
}

// queueLine is the status in one line: "12 events waiting, last sent 3 h ago".
func queueLine(st *app.TelemetryStatus, now time.Time) string {
	s := fmt.Sprintf("%d events waiting", st.Queue.Waiting)
	if st.Queue.Waiting == 1 {
		s = "1 event waiting"
	}
	if st.Queue.Sent.LastSent.IsZero() {
		return s + ", nothing sent yet"
	}
	return fmt.Sprintf("%s, last sent %s (%d sent in all)", s, ago(st.Queue.Sent.LastSent, now), st.Queue.Sent.Total)
}

func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func telemetryShowQueue(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry show-queue", "[--json] [--limit N]", "Show the reports waiting to be sent, exactly as they would go.")
	jsonOut := fs.Bool("json", false, "one JSON object per event")
	limit := fs.Int("limit", 0, "show at most `N` (default all)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	list, err := app.TelemetryQueue(home, *limit)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		for _, q := range list {
			writeJSONLine(e.stdout, q.Event)
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "Nothing waits to be sent.")
		return exitOK
	}
	for _, q := range list {
		ev := q.Event
		line := fmt.Sprintf("%s  %-12s %-8s", ev.Hour.Local().Format("2006-01-02 15:00"), ev.Type, ev.Outcome)
		if ev.ErrorClass != "" {
			line += " (" + ev.ErrorClass + ")"
		}
		if ev.Hardware != "" {
			line += "  " + ev.Hardware
		}
		if ev.From != "" || ev.To != "" {
			line += fmt.Sprintf("  %s -> %s", ev.From, ev.To)
		}
		if ev.Device != "" {
			line += "  device " + ev.Device[:min(8, len(ev.Device))]
		}
		if ev.DurationMS > 0 {
			line += fmt.Sprintf("  %.1f s", float64(ev.DurationMS)/1000)
		}
		fmt.Fprintln(e.stdout, clean(line)+"  id "+ev.ID)
	}
	return exitOK
}

func telemetrySend(e *env, home string, args []string) int {
	fs := newFlags(e, "telemetry send", "[--timeout D]", "Send what waits now, instead of at the next chance.")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after `D`")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	st, err := app.GetTelemetryStatus(home)
	if err != nil {
		return reportEnv(e, false, err)
	}
	if st.Settings.Consent != app.ConsentOn {
		fmt.Fprintln(e.stderr, "✘ telemetry is off: nothing is sent (`fieldflash telemetry on` to agree)")
		return exitRefused
	}
	rep, err := app.SendTelemetry(context.Background(), home, *timeout)
	if err != nil {
		fmt.Fprintf(e.stderr, "✘ %s; %d sent before that, the rest waits and goes later\n", clean(err.Error()), rep.Sent)
		return exitEnv
	}
	if rep.Sent == 0 && rep.DroppedReported == 0 {
		fmt.Fprintln(e.stdout, "✔ nothing waited to be sent")
		return exitOK
	}
	fmt.Fprintf(e.stdout, "✔ sent %d events in %d requests", rep.Sent, rep.Batches)
	if rep.Rejected > 0 {
		fmt.Fprintf(e.stdout, " (%d refused by the collector)", rep.Rejected)
	}
	if rep.DroppedReported > 0 {
		fmt.Fprintf(e.stdout, "; reported %d dropped", rep.DroppedReported)
	}
	fmt.Fprintln(e.stdout)
	return exitOK
}

// TelemetryEnv answers the first-run question for scripts and CI.
const TelemetryEnv = "FIELDFLASH_TELEMETRY"

// asksTelemetry are the commands whose first interactive run asks the question: those
// that would report something.
var asksTelemetry = map[string]bool{"verify": true, "flash": true, "recover": true, "trust": true, "devices": true}

// telemetryAnswer handles the answer to the telemetry question before a command runs:
// given (--telemetry=on|off before the command, or FIELDFLASH_TELEMETRY), it is kept;
// not given, the first interactive run of a reporting command asks.
func telemetryAnswer(e *env, flagValue, command string) int {
	val, how := flagValue, "command line"
	if val == "" {
		val, how = os.Getenv(TelemetryEnv), "environment"
	}
	home, err := app.Home()
	if err != nil {
		return exitOK // the command itself says what is wrong with the home
	}
	if val != "" {
		on, ok := parseOnOff(val)
		if !ok {
			fmt.Fprintf(e.stderr, "fieldflash: telemetry answer %q (%s): use on or off\n", val, how)
			return exitUsage
		}
		if _, err := app.SetTelemetryConsent(home, on, how); err != nil {
			fmt.Fprintln(e.stderr, "fieldflash:", err)
			return exitEnv
		}
		return exitOK
	}
	if !asksTelemetry[command] || !interactive(e) {
		return exitOK
	}
	set, err := app.LoadTelemetrySettings(home)
	if err != nil || set.Consent != app.ConsentUnasked {
		return exitOK
	}
	fmt.Fprint(e.stderr, app.TelemetryQuestion())
	fmt.Fprint(e.stderr, "\nSend usage reports? [y/N] ")
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	on := a == "y" || a == "yes"
	if _, err := app.SetTelemetryConsent(home, on, "question"); err != nil {
		fmt.Fprintln(e.stderr, "fieldflash:", err)
		return exitEnv
	}
	if on {
		fmt.Fprintln(e.stderr, "✔ telemetry on. `fieldflash telemetry off` stops it at any time.")
	} else {
		fmt.Fprintln(e.stderr, "✔ telemetry stays off. `fieldflash telemetry on` if you change your mind.")
	}
	fmt.Fprintln(e.stderr)
	return exitOK
}

func parseOnOff(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes", "y", "1", "true":
		return true, true
	case "off", "no", "n", "0", "false":
		return false, true
	}
	return false, false
}

// interactive says whether a person is at the terminal: stdin and stderr are terminals.
func interactive(e *env) bool {
	in, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return false
	}
	errf, ok := e.stderr.(*os.File)
	return ok && term.IsTerminal(int(errf.Fd()))
}

// flushTelemetry sends what a command queued, briefly, after its result was printed: a
// collector out of reach costs at most a few seconds, and the events wait for later.
func flushTelemetry() {
	home, err := app.Home()
	if err != nil {
		return
	}
	st, err := app.GetTelemetryStatus(home)
	if err != nil || st.Settings.Consent != app.ConsentOn || st.Problem != "" || st.Queue.Waiting+st.Queue.Dropped.Total() == 0 {
		return
	}
	app.SendTelemetry(context.Background(), home, 3*time.Second)
}
