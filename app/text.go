package app

import (
	"io"

	"github.com/fieldflash/fieldflash/verify/untrusted"
)

// Text that did not come from this program (anything out of a bundle, anything a device
// reports, file and port names) is escaped before it reaches a terminal, so a hostile
// bundle or device cannot move the cursor, recolour the screen or draw a fake "verified"
// line (package verify/untrusted). Every printer of a face writes through these.

// Text escapes control characters, bidirectional overrides and invalid UTF-8 in s.
func Text(s string) string { return untrusted.Text(s) }

// Fprintf is fmt.Fprintf with every string, error and Stringer argument escaped by Text.
func Fprintf(w io.Writer, format string, args ...any) { untrusted.Fprintf(w, format, args...) }

// Fprintln is fmt.Fprintln with its arguments escaped by Text.
func Fprintln(w io.Writer, args ...any) { untrusted.Fprintln(w, args...) }

// Sprintf is fmt.Sprintf with its arguments escaped by Text.
func Sprintf(format string, args ...any) string { return untrusted.Sprintf(format, args...) }

// JSON makes encoding/json's output safe for a terminal too (DEL, C1 controls and format
// characters as \u escapes), without changing what it means.
func JSON(b []byte) []byte { return untrusted.JSON(b) }
