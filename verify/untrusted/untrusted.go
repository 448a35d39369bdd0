// Package untrusted makes text that did not come from this program safe to show on a
// terminal: strings out of a bundle (even its "_type"), strings a device reports, file
// names. A control character in them could move the cursor, recolour the screen or erase
// a line, and so draw a fake green "verified" line under a refusal; a bidirectional
// override could reorder what is read. Text escapes all of them, Go-style, so what the
// technician sees is exactly what the bytes say. Every printer that shows such text uses
// Fprintf (or Text) from here.
package untrusted

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text returns s with every byte a terminal could act on escaped: C0 and C1 control
// characters and DEL (as \n, \t, \r, \x1b, \u009b), Unicode format characters such as
// bidirectional overrides and zero-width marks (\u202e), line and paragraph separators,
// and bytes that are not UTF-8 (\xff). A backslash becomes \\, so an escape can always be
// told from text that merely looks like one. Printable text, non-ASCII letters included,
// is unchanged.
func Text(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports runes a terminal may act on, or that change how text reads.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// Fprintf formats like fmt.Fprintf, with every string, error, fmt.Stringer and []string
// argument escaped by Text first; numbers and other values are formatted as they are. The
// format itself is the program's own text and is written as it is.
func Fprintf(w io.Writer, format string, args ...any) (int, error) {
	return fmt.Fprintf(w, format, escapeArgs(args)...)
}

// Fprintln is fmt.Fprintln with its arguments escaped as Fprintf does.
func Fprintln(w io.Writer, args ...any) (int, error) {
	return fmt.Fprintln(w, escapeArgs(args)...)
}

// Sprintf is fmt.Sprintf with its arguments escaped as Fprintf does.
func Sprintf(format string, args ...any) string {
	return fmt.Sprintf(format, escapeArgs(args)...)
}

func escapeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = Text(v)
		case []string:
			esc := make([]string, len(v))
			for j, s := range v {
				esc[j] = Text(s)
			}
			out[i] = esc
		case error:
			out[i] = errors.New(Text(v.Error()))
		case fmt.Stringer:
			out[i] = Text(v.String())
		default:
			out[i] = a
		}
	}
	return out
}

// JSON makes JSON text from encoding/json safe for a terminal too: encoding/json escapes
// C0 controls but writes DEL, C1 controls and format characters raw. Those runes only
// occur inside strings there, so writing them as \uXXXX escapes keeps the JSON's meaning.
func JSON(b []byte) []byte {
	if clean(string(b)) {
		return b
	}
	var out strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) && !(r == utf8.RuneError && n <= 1) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+n])
		}
		i += n
	}
	return []byte(out.String())
}
