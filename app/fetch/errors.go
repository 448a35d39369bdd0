package fetch

import (
	"errors"
	"fmt"
)

// Code classifies why a fetch failed; the CLI maps it to an exit code, scripts read it
// from --json.
type Code string

// Why a fetch or a bundle failed.
const (
	CodeConfig   Code = "config"    // no repository configured, or a broken configuration
	CodeOffline  Code = "offline"   // no mirror could be reached
	CodeRefused  Code = "refused"   // every reachable mirror served metadata or bytes that do not verify
	CodeNotFound Code = "not-found" // nothing fits the hardware asked for
	CodeIO       Code = "io"        // the cache or the state could not be read or written
	CodeCanceled Code = "canceled"  // interrupted; the next run resumes
)

// Error names the thing, the reason and the next step.
type Error struct {
	Code   Code
	Thing  string
	Reason string
	Next   string
	Err    error
}

func (e *Error) Error() string {
	msg := ""
	if e.Thing != "" {
		msg = e.Thing + ": "
	}
	msg += e.Reason
	if e.Next != "" {
		msg += "; " + e.Next
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns err's Code, or "" when err is not an *Error.
func CodeOf(err error) Code {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

func errorf(code Code, thing, next, format string, args ...any) *Error {
	return &Error{Code: code, Thing: thing, Reason: fmt.Sprintf(format, args...), Next: next}
}
