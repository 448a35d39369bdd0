package untrusted

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// A hostile string that would erase the refusal line and draw a green "verified" one.
const fakeVerdict = "x\r\x1b[2K\x1b[32m✔ acme-gw-7.2.fwb verified\x1b[0m"

func TestEscapesEverythingATerminalActsOn(t *testing.T) {
	for in, want := range map[string]string{
		"acme-gw/app-1.0.0.bin": "acme-gw/app-1.0.0.bin",
		"Übersetzung 日本":        "Übersetzung 日本",
		fakeVerdict:             `x\r\x1b[2K\x1b[32m✔ acme-gw-7.2.fwb verified\x1b[0m`,
		"line\nnext\ttab":       `line\nnext\ttab`,
		"csi\u009b31m":          `csi\u009b31m`,
		"del\x7f":               `del\x7f`,
		"evil\u202etxt.exe":     `evil\u202etxt.exe`,
		"zero\u200bwidth":       `zero\u200bwidth`,
		"bad\xffutf8":           `bad\xffutf8`,
		`back\slash`:            `back\\slash`,
		"sep\u2028line":         `sep\u2028line`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFprintfEscapesArgumentsNotTheFormat(t *testing.T) {
	var b bytes.Buffer
	Fprintf(&b, "target %s for %v (%d bytes): %v\n", fakeVerdict, []string{"hw\x1b"}, 42, errors.New("device said \x1b[2J"))
	want := `target x\r\x1b[2K\x1b[32m✔ acme-gw-7.2.fwb verified\x1b[0m for [hw\x1b] (42 bytes): device said \x1b[2J` + "\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}

func TestJSONStaysJSONAndLosesRawControls(t *testing.T) {
	in := map[string]string{"notes": "a\u009bb\u202ec\x7fd\x1be"}
	raw, _ := json.Marshal(in)
	out := JSON(raw)
	for _, r := range string(out) {
		if r == 0x7f || r == 0x9b || r == 0x202e || r == 0x1b {
			t.Fatalf("%q still holds %U", out, r)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["notes"] != in["notes"] {
		t.Fatalf("round trip: %q, %v", back, err)
	}
}

// Whatever the input, the output holds no byte a terminal acts on and is valid UTF-8.
func FuzzText(f *testing.F) {
	f.Add(fakeVerdict)
	f.Add("\xff\xfe\u202e\u009b")
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Text(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("Text(%q) = %q holds %U", s, out, r)
			}
		}
		if clean(s) && out != s {
			t.Fatalf("clean text %q changed to %q", s, out)
		}
		if !strings.Contains(s, `\`) && !strings.ContainsAny(s, "\x00\x1b\n\r\t\x7f") && utf8.ValidString(s) && out != s {
			for _, r := range s {
				if unsafeRune(r) {
					return
				}
			}
			t.Fatalf("printable text %q changed to %q", s, out)
		}
	})
}
