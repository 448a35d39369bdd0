package verify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// payloadBuffer is the size of each read while payloads are hashed: large enough that
// the per-read cost vanishes next to SHA-256, small enough to keep memory flat.
const payloadBuffer = 1 << 20

// VerifyFile decides whether the bundle at path may be flashed: it reads the bundle in one
// forward pass, trusts its metadata from a pinned root (and what State remembers), checks
// every payload's hash and self-description, and checks the targets against the device
// facts in opts. Every refusal is an *Error. On success, State remembers the newest
// metadata and time; a refusal changes nothing.
func VerifyFile(path string, opts Options) (*Verified, error) {
	v, err := verifyFile(path, opts)
	if err != nil {
		var ve *Error
		if !errors.As(err, &ve) {
			ve = &Error{Code: CodeIO, Reason: err.Error(), Next: "check that the file is readable and copy it again", Err: err}
		}
		if ve.Bundle == "" {
			ve.Bundle = filepath.Base(path)
		}
		return nil, ve
	}
	return v, nil
}

func verifyFile(path string, opts Options) (*Verified, error) {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	now = now.UTC()
	limits := opts.Limits.WithDefaults()
	// Two verifications at once (the GUI and a script) must not interleave their reads and
	// writes of State: the later save could move the newest metadata back.
	if l, ok := opts.State.(Locker); ok {
		unlock, err := l.Lock()
		if err != nil {
			return nil, stateError("locking", "this machine", err)
		}
		defer unlock()
	}

	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Code: CodeIO, Reason: "cannot open it: " + err.Error(), Next: "check the path and that the file is readable", Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{Code: CodeIO, Reason: err.Error(), Next: "check that the file is readable", Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Code: CodeIO, Reason: "not a regular file", Next: "give the path of a .fwb bundle file"}
	}
	br := bundle.NewReader(f, fi.Size(), limits)
	md, err := br.Metadata()
	if err != nil {
		return nil, bundleError(err)
	}

	var newest time.Time
	if opts.State != nil {
		if newest, err = opts.State.NewestTime(); err != nil {
			return nil, stateError("reading the newest trusted time from", "this machine", err)
		}
	}
	ref := now
	if newest.After(now) {
		ref = newest
	}
	t, err := establishTrust(md, opts, now, ref, limits)
	if err != nil {
		return nil, err
	}
	if newest.After(now) {
		t.warnings = append(t.warnings, fmt.Sprintf("the system clock (%s) is behind the newest time this machine trusted (%s); expiry was checked against the latter", day(now), day(newest)))
	}

	idx := t.listingsByHash()
	buf := make([]byte, payloadBuffer)
	var targets []Target
	for {
		p, err := br.NextPayload()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bundleError(err)
		}
		ts, err := t.checkPayload(idx, p, buf, f)
		if err != nil {
			return nil, err
		}
		targets = append(targets, ts...)
	}
	if len(targets) == 0 {
		return nil, errorf(CodeNoPayload, "targets/", "ask the release team for the bundle that carries the firmware",
			"the bundle carries metadata but no payload: there is nothing to flash")
	}
	all := targets
	fit, e := checkDevice(targets, opts)
	if e != nil {
		return nil, e
	}
	targets = fit
	digest, err := bundleDigest(f, fi.Size(), all)
	if err != nil {
		return nil, &Error{Code: CodeIO, Reason: err.Error(), Next: "check that the file is readable and copy it again", Err: err}
	}

	if opts.State != nil {
		if err := t.save(opts.State); err != nil {
			return nil, stateError("saving the newest metadata to", t.repo, err)
		}
		if now.After(newest) {
			if err := opts.State.SaveNewestTime(now); err != nil {
				return nil, stateError("saving the newest trusted time to", t.repo, err)
			}
		}
	}
	return &Verified{
		Bundle:      path,
		Digest:      digest,
		Repository:  t.repo,
		RootVersion: t.tm.Root.Signed.Version,
		Roles:       t.rolesReport(),
		Targets:     targets,
		Older:       t.older,
		RefTime:     ref,
		Warnings:    t.warnings,
	}, nil
}

// bundleError carries a container refusal over as a verification refusal of the same code.
func bundleError(err error) *Error {
	var be *bundle.Error
	if errors.As(err, &be) {
		thing := ""
		if be.Entry != "" {
			thing = "entry " + be.Entry
		}
		return &Error{Code: Code(be.Kind), Thing: thing, Reason: be.Reason, Next: be.Next(), Err: err}
	}
	var ve *Error
	if errors.As(err, &ve) {
		return ve
	}
	return &Error{Code: CodeIO, Reason: err.Error(), Next: "check that the file is readable and copy it again", Err: err}
}
