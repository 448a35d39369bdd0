package verify

import (
	"errors"
	"fmt"
)

// Code classifies why a bundle was refused. Tests and scripts (--json) match on it; the
// message is for people.
type Code string

// The reasons a bundle is refused. Each tamper vector in testdata/ expects one of them.
const (
	CodeIO              Code = "io"               // the file could not be read
	CodeFormat          Code = "format"           // not a well-formed bundle (bad tar header, bad JSON, wrong order)
	CodeTruncated       Code = "truncated"        // the archive ends early
	CodeTrailingGarbage Code = "trailing-garbage" // bytes after the end-of-archive marker
	CodeUnsafePath      Code = "unsafe-path"      // absolute path, "..", or a name outside the layout
	CodeLinkEntry       Code = "link-entry"       // symlink, hardlink or other non-regular entry
	CodeDuplicate       Code = "duplicate-entry"  // the same name twice
	CodeTooLarge        Code = "too-large"        // a size or count above Limits (nothing was allocated for it)
	CodeUnexpected      Code = "unexpected-entry" // an entry the metadata does not account for
	CodeUntrusted       Code = "untrusted"        // no pinned root (of this mode) chains to the bundle
	CodeBadSignature    Code = "bad-signature"    // a signature does not verify
	CodeThreshold       Code = "threshold"        // fewer distinct valid keys than the threshold
	CodeRevokedKey      Code = "revoked-key"      // signed by a key a newer root or delegation dropped
	CodeRootSkipped     Code = "root-skipped"     // the root chain misses a version
	CodeExpired         Code = "expired"          // metadata expired before the reference time
	CodeClockBackwards  Code = "clock-backwards"  // expired only because the clock is behind the newest trusted time
	CodeRollback        Code = "rollback"         // a metadata version lower than one trusted before
	CodeWithdrawn       Code = "withdrawn"        // an older bundle whose payload the newest targets no longer list
	CodeMetadata        Code = "metadata"         // metadata inconsistent with itself (snapshot vs targets, missing role, bad custom fields)
	CodePayload         Code = "payload"          // payload length or hash differs from the signed metadata
	CodeNoPayload       Code = "no-payload"       // the bundle carries no firmware
	CodeHardware        Code = "hardware"         // the image does not fit the device's hardware id
	CodeReleaseCounter  Code = "release-counter"  // the release counter is below the device's
	CodeRequirement     Code = "requirement"      // a requirement on another component is not met
	CodeImageFormat     Code = "image-format"     // an MCUboot / DFU image is malformed
	CodeImageMismatch   Code = "image-mismatch"   // the image's own fields disagree with the signed metadata
)

// Error is a refusal: it names the thing, the reason and the next step.
type Error struct {
	Bundle string // file name
	Code   Code
	Thing  string // what is wrong: "targets.json", "payload app.bin", "entry ../x"
	Reason string
	Next   string // what the user should do
	Err    error  // underlying error, if any
}

func (e *Error) Error() string {
	msg := ""
	if e.Bundle != "" {
		msg = "bundle " + e.Bundle + ": "
	}
	if e.Thing != "" {
		msg += e.Thing + ": "
	}
	msg += e.Reason
	if e.Next != "" {
		msg += "; " + e.Next
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of err, or "" when err is not a verification refusal.
func CodeOf(err error) Code {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Code
	}
	return ""
}

func errorf(code Code, thing, next, format string, args ...any) *Error {
	return &Error{Code: code, Thing: thing, Reason: fmt.Sprintf(format, args...), Next: next}
}
