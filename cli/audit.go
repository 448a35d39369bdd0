package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "audit", summary: "list, export and verify the tamper-evident log of what was done here", run: cmdAudit})
}

const auditHelp = `
Every verification, flash, recovery, trust change and setting change on this computer is
an entry of the audit log ($FIELDFLASH_HOME/audit/audit.log), hash-chained so that an
edited, removed, inserted or reordered entry is found (docs/audit.md).

  fieldflash audit list [--since WHEN] [--device ID] [--kind KIND] [--json] [--demo]
  fieldflash audit export FILE [--demo]
  fieldflash audit verify [FILE] [--anchor SEQ:HASH]... [--json] [--demo]
  fieldflash audit anchor [--json] [--demo]
  fieldflash audit stats [--days N] [--json] [--demo]

verify without FILE checks this computer's log, against every head printed, exported or
sent with telemetry before (anchors); an exported FILE verifies on any machine.

Exit codes: 0 done (verify: intact), 1 the log does not verify (the first bad entry is
named), 2 usage, 3 the log or FILE could not be read or written.`

func cmdAudit(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		out := e.stdout
		if len(args) == 0 {
			out = e.stderr
		}
		fmt.Fprintf(out, "Usage: fieldflash audit list|export|verify|anchor|stats ...\n%s\n", auditHelp)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "list":
		return auditList(e, args[1:])
	case "export":
		return auditExport(e, args[1:])
	case "verify":
		return auditVerify(e, args[1:])
	case "anchor":
		return auditAnchor(e, args[1:])
	case "stats":
		return auditStats(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "fieldflash audit: unknown subcommand %q; use list, export, verify, anchor or stats\n", args[0])
	return exitUsage
}

// parseSince reads a date (2026-06-01), a time (RFC 3339) or an age (36h, 7d).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a date (2026-06-01), a time (2026-06-01T08:00:00Z) or an age (36h, 7d)", s)
}

func auditList(e *env, args []string) int {
	fs := newFlags(e, "audit list", "[--since WHEN] [--device ID] [--kind KIND] [--json] [--demo]", "List the audit log's entries, oldest first.")
	since := fs.String("since", "", "only entries since `WHEN`: a date (2026-06-01), a time, or an age (36h, 7d)")
	device := fs.String("device", "", "only this device: its pseudonym (or first digits) or its identity as HARDWARE/SERIAL")
	kind := fs.String("kind", "", "only entries of this `KIND`: verification, flash, recovery, trust-change, setting-change, anomaly-warning, torn-record")
	jsonOut := fs.Bool("json", false, `print {"ok", "entries", "report"} as JSON`)
	demo := fs.Bool("demo", false, "the demo's own log")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "fieldflash audit list: takes no arguments, only options (see --help)")
		return exitUsage
	}
	t, err := parseSince(*since, time.Now())
	if err != nil {
		fmt.Fprintln(e.stderr, "fieldflash audit list:", err)
		return exitUsage
	}
	entries, rep, err := app.ListAudit(app.AuditQuery{Since: t, Device: *device, Kind: *kind, Demo: *demo})
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		if entries == nil {
			entries = []app.AuditEntry{}
		}
		writeJSON(e.stdout, map[string]any{"ok": rep.OK(), "entries": entries, "report": rep})
		return exitOK
	}
	if len(entries) == 0 {
		fmt.Fprintln(e.stdout, "No entries.")
	}
	for i := range entries {
		fmt.Fprintln(e.stdout, describeEntry(&entries[i]))
	}
	printReportSummary(e, rep, false)
	return exitOK
}

// describeEntry is one entry on one line. Every field that came from outside (a device's
// hardware id, a bundle's name) is escaped.
func describeEntry(en *app.AuditEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5d  %s  %-15s %-8s", en.Seq, en.Time.Local().Format("2006-01-02 15:04:05"), en.Kind, en.Outcome)
	if en.ErrorClass != "" {
		fmt.Fprintf(&b, " (%s)", en.ErrorClass)
	}
	if en.Hardware != "" {
		b.WriteString("  " + en.Hardware)
	}
	if en.Device != "" {
		b.WriteString("  device " + en.Device[:min(8, len(en.Device))])
	}
	if en.From != "" || en.To != "" {
		fmt.Fprintf(&b, "  %s -> %s", orQ(en.From), orQ(en.To))
	}
	if en.Result != "" && en.Kind != "anomaly-warning" {
		b.WriteString("  " + en.Result)
	}
	if en.Bundle != "" {
		b.WriteString("  " + en.Bundle)
	}
	if en.Repository != "" && en.Kind != "trust-change" {
		b.WriteString(" [" + en.Repository + "]")
	}
	switch {
	case en.DurationMS >= 1000:
		fmt.Fprintf(&b, "  %.1f s", float64(en.DurationMS)/1000)
	case en.DurationMS > 0:
		fmt.Fprintf(&b, "  %d ms", en.DurationMS)
	}
	if en.Operator != "" {
		b.WriteString("  by " + en.Operator)
	}
	if en.Detail != "" {
		b.WriteString("  — " + en.Detail)
	}
	return clean(b.String())
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// printReportSummary says whether the log held, after a listing or a verification.
func printReportSummary(e *env, rep *app.AuditReport, verbose bool) {
	for _, t := range rep.Torn {
		fmt.Fprintf(e.stderr, "⚠ entry %d: %d bytes after entry %d were torn by a crash or power cut (kept in the log; that record never completed)\n", t.Seq, t.Length, t.After)
	}
	if t := rep.TornTail; t != nil {
		fmt.Fprintf(e.stderr, "⚠ the last record (%d bytes after entry %d) is torn: a crash while it was written; fieldflash notes it in the log at its next write\n", t.Length, rep.Head.Seq)
	}
	if rep.Unterminated {
		fmt.Fprintf(e.stderr, "⚠ entry %d is whole but its line end is missing (a crash right after writing it)\n", rep.Head.Seq)
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(e.stderr, "✘ the audit log does not verify: %s\n", clean(p.Error()))
		fmt.Fprintf(e.stderr, "  entries up to %d are intact; keep a copy of the file for support (`fieldflash audit export FILE`)\n", p.After)
		return
	}
	if verbose {
		fmt.Fprintf(e.stdout, "✔ %d entries, the chain is intact", rep.Entries)
		if rep.Anchored > 0 {
			fmt.Fprintf(e.stdout, " and holds %d anchors", rep.Anchored)
		}
		fmt.Fprintln(e.stdout)
		if rep.Head.Seq > 0 {
			fmt.Fprintf(e.stdout, "  head %s\n", rep.Head)
		}
	}
}

func auditExport(e *env, args []string) int {
	fs := newFlags(e, "audit export", "FILE [--demo]", "Write the audit log, with its chain, to FILE (JSON Lines) for support staff; it verifies on any machine.")
	demo := fs.Bool("demo", false, "the demo's own log")
	jsonOut := fs.Bool("json", false, "print the export's report as JSON")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "fieldflash audit export: give the file to write, e.g. `fieldflash audit export audit-site42.jsonl`")
		return exitUsage
	}
	rep, err := app.ExportAudit(fs.Arg(0), *demo)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": rep.OK(), "file": fs.Arg(0), "report": rep})
	} else {
		fmt.Fprintf(e.stdout, "✔ exported %d entries to %s\n", rep.Entries, fs.Arg(0))
		fmt.Fprintf(e.stdout, "  head %s\n  note it with the file: `fieldflash audit verify %s --anchor %s` proves nothing was cut or changed\n", rep.Head, fs.Arg(0), rep.Head)
	}
	printReportSummary(e, rep, false)
	if !rep.OK() {
		return exitRefused
	}
	return exitOK
}

// anchorFlags collects repeated --anchor SEQ:HASH.
type anchorFlags []app.AuditAnchor

func (a *anchorFlags) String() string { return "" }
func (a *anchorFlags) Set(v string) error {
	an, err := app.ParseAnchor(v)
	if err != nil {
		return err
	}
	*a = append(*a, an)
	return nil
}

func auditVerify(e *env, args []string) int {
	fs := newFlags(e, "audit verify", "[FILE] [--anchor SEQ:HASH]... [--json] [--demo]",
		"Check every entry's hash, the sequence and the chain, and that the log still holds each anchor; name the first bad entry.")
	var anchors anchorFlags
	fs.Var(&anchors, "anchor", "a head noted before, `SEQ:HASH`: the log must still hold it (repeatable)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	demo := fs.Bool("demo", false, "the demo's own log")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "fieldflash audit verify: give at most one file")
		return exitUsage
	}
	rep, path, err := app.VerifyAudit(fs.Arg(0), *demo, anchors)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": rep.OK(), "file": path, "report": rep})
	} else {
		fmt.Fprintln(e.stdout, "audit log", path)
	}
	printReportSummary(e, rep, !*jsonOut)
	if !rep.OK() {
		return exitRefused
	}
	return exitOK
}

func auditAnchor(e *env, args []string) int {
	fs := newFlags(e, "audit anchor", "[--json] [--demo]",
		"Print the log's head (SEQ:HASH) to note down elsewhere: a log cut short afterwards no longer holds it. It is remembered here too.")
	jsonOut := fs.Bool("json", false, "print as JSON")
	demo := fs.Bool("demo", false, "the demo's own log")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	home, err := app.Home()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *demo {
		home = filepath.Join(home, "demo")
	}
	h, err := app.AnchorAudit(home, "printed")
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, h)
		return exitOK
	}
	if h.Seq == 0 {
		fmt.Fprintln(e.stdout, "The audit log is empty: nothing to anchor yet.")
		return exitOK
	}
	fmt.Fprintln(e.stdout, h)
	fmt.Fprintf(e.stdout, "  entry %d of %s; later: `fieldflash audit verify --anchor %s`\n", h.Seq, h.Time.Local().Format("2006-01-02 15:04"), h)
	return exitOK
}

func auditStats(e *env, args []string) int {
	fs := newFlags(e, "audit stats", "[--days N] [--json] [--demo]", "Update success rate per hardware model and per bundle, from the audit log.")
	days := fs.Int("days", 30, "look back `N` days")
	jsonOut := fs.Bool("json", false, "print as JSON")
	demo := fs.Bool("demo", false, "the demo's own log")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	st, err := app.AuditHealth(*days, *demo)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, st)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "updates of the last %d days (since %s)\n", *days, st.Since.Local().Format("2006-01-02"))
	if st.Total.Updates+st.Total.Refused+st.Total.Canceled == 0 {
		fmt.Fprintln(e.stdout, "  none")
		return exitOK
	}
	row := func(label string, r app.AuditRate) {
		rate := "   -  "
		if r.Updates > 0 {
			rate = fmt.Sprintf("%5.1f%%", r.Success*100)
		}
		fmt.Fprintf(e.stdout, "  %-40s %s  %3d ok %3d failed of %3d", clean(label), rate, r.OK, r.Failed, r.Updates)
		if r.Refused > 0 || r.Canceled > 0 {
			fmt.Fprintf(e.stdout, "  (%d refused, %d canceled)", r.Refused, r.Canceled)
		}
		fmt.Fprintln(e.stdout)
	}
	row("all", st.Total)
	fmt.Fprintln(e.stdout, "by hardware model")
	for _, r := range st.ByModel {
		row(r.Key, r)
	}
	fmt.Fprintln(e.stdout, "by bundle")
	for _, r := range st.ByBundle {
		label := r.Key
		if len(label) > 16 {
			label = label[:16] + "…"
		}
		if r.Label != "" {
			label = r.Label + " " + label
		}
		row(label, r)
	}
	return exitOK
}

// clean escapes text that did not come from this program (a device's hardware id, a
// bundle's file name, an endpoint's message) before it reaches a terminal.
func clean(s string) string { return app.Text(s) }
