package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "verify", summary: "check a firmware bundle offline and show what it contains", run: cmdVerify})
}

const verifyHelp = `
Checks BUNDLE against the roots pinned on this machine, offline: the root chain, every
role's signatures and threshold, expiry (against the newer of the system clock and the
newest time trusted before), that no metadata version goes back, every payload's length and
hash, and, where an image describes itself (MCUboot, DFU), that it agrees with the signed
metadata. With --hardware and --current-counter it also checks that the firmware fits a
given device and would not roll it back.

Exit codes: 0 verified, 1 refused (the reason and the next step are printed),
2 usage, 3 the bundle or $FIELDFLASH_HOME could not be read.`

// multiFlag collects repeated --installed component=version flags.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdVerify(e *env, args []string) int {
	fs := newFlags(e, "verify", "BUNDLE.fwb [options]", verifyHelp)
	jsonOut := fs.Bool("json", false, "print the verdict as JSON (for scripts)")
	hardware := fs.String("hardware", "", "the device's hardware id: every target must fit it")
	counter := fs.String("current-counter", "", "the device's release counter: no target may be below it")
	var installed multiFlag
	fs.Var(&installed, "installed", "an installed `component=version`, for requirements (repeatable)")
	demo := fs.Bool("demo", false, "trust the demo root, and only it (demo bundles only)")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		app.Fprintln(e.stderr, "fieldflash verify: give exactly one bundle, e.g. `fieldflash verify acme-7.2.fwb`")
		return exitUsage
	}
	opts := app.VerifyOptions{Hardware: *hardware}
	if *counter != "" {
		n, err := strconv.ParseUint(*counter, 10, 64)
		if err != nil {
			app.Fprintf(e.stderr, "fieldflash verify: --current-counter %q is not a whole number\n", *counter)
			return exitUsage
		}
		opts.CurrentCounter = &n
	}
	if len(installed) > 0 {
		opts.Installed = map[string]string{}
		for _, kv := range installed {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || v == "" {
				app.Fprintf(e.stderr, "fieldflash verify: --installed %q: write component=version, e.g. bootloader=1.4.0\n", kv)
				return exitUsage
			}
			opts.Installed[k] = v
		}
	}
	s, err := app.OpenSession(*demo)
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	v, err := s.Verify(fs.Arg(0), opts)
	defer warnSession(e, s)
	if err != nil {
		return reportRefusal(e, *jsonOut, err)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": true, "verified": v})
		return exitOK
	}
	printVerdict(e.stdout, v)
	return exitOK
}

func writeJSON(w io.Writer, v any) {
	data, _ := json.MarshalIndent(v, "", "  ")
	w.Write(append(app.JSON(data), '\n'))
}

func reportEnv(e *env, jsonOut bool, err error) int {
	if jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": false, "code": "environment", "error": err.Error()})
	}
	app.Fprintln(e.stderr, "fieldflash:", err)
	return exitEnv
}

// reportRefusal prints a verification refusal and returns its exit code.
func reportRefusal(e *env, jsonOut bool, err error) int {
	var ve *app.VerifyError
	if !errors.As(err, &ve) {
		return reportEnv(e, jsonOut, err)
	}
	code := exitRefused
	if ve.Code == app.CodeIO {
		code = exitEnv
	}
	if jsonOut {
		writeJSON(e.stdout, map[string]any{"ok": false, "code": ve.Code, "bundle": ve.Bundle, "thing": ve.Thing, "reason": ve.Reason, "next": ve.Next, "error": ve.Error()})
	}
	app.Fprintln(e.stderr, "✘ refused:", ve.Error())
	return code
}

func printVerdict(w io.Writer, v *app.Verified) {
	app.Fprintf(w, "✔ %s verified\n", v.Bundle)
	app.Fprintf(w, "  repository   %s (root v%d)\n", v.Repository, v.RootVersion)
	app.Fprintf(w, "  digest       %s\n", v.Digest)
	app.Fprintf(w, "  checked at   %s\n", v.RefTime.UTC().Format("2006-01-02 15:04 MST"))
	if v.Older {
		app.Fprintln(w, "  note         older than the newest metadata seen here; accepted because the newest targets still list its firmware")
	}
	for _, warn := range v.Warnings {
		app.Fprintf(w, "  ⚠ %s\n", warn)
	}
	app.Fprintln(w, "  signed by")
	for _, r := range v.Roles {
		app.Fprintf(w, "    %-12s v%-4d expires %s  %d of threshold %d: %s\n", r.Name, r.Version, r.Expires.UTC().Format("2006-01-02"),
			len(r.SignedBy), r.Threshold, shortIDs(r.SignedBy))
	}
	app.Fprintln(w, "  firmware")
	for _, t := range v.Targets {
		m := t.Meta
		app.Fprintf(w, "    %s\n", t.Path)
		app.Fprintf(w, "      %-12s %s %s, release counter %d, %s\n", "component", m.Component, m.Version, m.ReleaseCounter, humanBytes(t.Length))
		app.Fprintf(w, "      %-12s %s\n", "hardware", strings.Join(m.HardwareIDs, ", "))
		app.Fprintf(w, "      %-12s %s (signed by role %s)\n", "sha256", t.SHA256, t.Role)
		if img := t.Image; img != nil {
			app.Fprintf(w, "      %-12s %s\n", "image", describeImage(img))
		}
		for _, r := range m.Requires {
			app.Fprintf(w, "      %-12s %s %s\n", "requires", r.Component, r.Version)
		}
		if len(m.Advisories) > 0 {
			app.Fprintf(w, "      %-12s %s\n", "advisories", strings.Join(m.Advisories, ", "))
		}
		if m.ReleaseNotes != "" {
			printLines(w, "      notes        ", "                   ", m.ReleaseNotes)
		}
	}
}

func describeImage(img *app.ImageInfo) string {
	switch img.Format {
	case "mcuboot":
		s := "MCUboot " + img.Version
		if img.SecurityCounter != nil {
			s += fmt.Sprintf(", security counter %d", *img.SecurityCounter)
		}
		s += ", image hash matches"
		if img.Signed {
			s += ", carries a signature"
		}
		return s
	case "dfu", "dfuse":
		s := fmt.Sprintf("%s file for USB %04x:%04x, suffix CRC valid", strings.ToUpper(img.Format), img.USBVendor, img.USBProduct)
		for _, t := range img.DfuSeTargets {
			s += fmt.Sprintf("; alt %d: %d element(s)", t.Alt, len(t.Elements))
		}
		return s
	}
	return img.Format
}

func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if len(id) > 8 {
			id = id[:8] + "…"
		}
		out[i] = id
	}
	return strings.Join(out, ", ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printLines prints text that did not come from this program (release notes) line by
// line, each escaped, the first after first and the others after indent: a line of it can
// never start at the margin, where fieldflash's own verdict lines are.
func printLines(w io.Writer, first, indent, text string) {
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		prefix := indent
		if i == 0 {
			prefix = first
		}
		app.Fprintf(w, prefix+"%s\n", strings.TrimRight(line, "\r"))
	}
}
