package bundle

import "fmt"

// Kinds of container refusal. Each equals the verify.Code string of the same meaning, so
// package verify can carry Kind over as its Code unchanged.
const (
	KindTruncated       = "truncated"
	KindTrailingGarbage = "trailing-garbage"
	KindUnsafePath      = "unsafe-path"
	KindLinkEntry       = "link-entry"
	KindDuplicate       = "duplicate-entry"
	KindTooLarge        = "too-large"
	KindFormat          = "format"
	KindIO              = "io"
)

// Error is a refusal of the container itself: nothing about trust, only about how the
// archive is laid out.
type Error struct {
	Kind   string // one of the Kind constants, a verify.Code string
	Entry  string // the archive entry at fault, "" when it concerns the whole file
	Reason string
}

func (e *Error) Error() string {
	msg := ""
	if e.Entry != "" {
		msg = "entry " + e.Entry + ": "
	}
	return msg + e.Reason + "; " + e.Next()
}

// Next says what the person holding the bundle should do about it.
func (e *Error) Next() string {
	switch e.Kind {
	case KindTruncated:
		return "the file is incomplete: copy or download the bundle again"
	case KindIO:
		return "check that the file is readable and copy it again"
	case KindTooLarge:
		return "this is not a bundle fieldflash accepts; ask the release team for a bundle within the limits of docs/bundle-format.md"
	case KindFormat:
		return "rebuild the bundle as docs/bundle-format.md describes (tar --format=ustar, metadata first), or ask the release team for a new one"
	default:
		return "the bundle was tampered with or built wrongly: do not flash it, ask the release team for a new one"
	}
}

func refuse(kind, entry, format string, args ...any) *Error {
	return &Error{Kind: kind, Entry: entry, Reason: fmt.Sprintf(format, args...)}
}
