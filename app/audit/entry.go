// Package audit is fieldflash's tamper-evident record of what was done on this laptop:
// every verification, flash, recovery, trust change and setting change, for support staff
// and auditors.
//
// The log is one file of JSON Lines. Each line is one Entry and ends with the SHA-256 of
// everything before that hash on the line; each entry holds the hash of the entry before
// it (Prev) and the next sequence number (Seq). Editing an entry breaks its own hash;
// removing, inserting or reordering entries breaks the sequence or the links; cutting
// the tail off is caught by an anchor (a head seen elsewhere: printed, or sent with
// telemetry). Appends are fsynced before Append returns, under an advisory lock, so two
// fieldflash processes never interleave. A power cut can leave a torn last line: Open
// finds it, keeps its bytes, and appends a torn-record entry that names them, so the gap
// is reported in the chain itself instead of being dropped or accepted.
//
// docs/audit.md describes the format for a second implementation.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kind says what an entry records.
type Kind string

// What the log records.
const (
	KindVerification  Kind = "verification"   // a bundle was verified (or refused)
	KindFlash         Kind = "flash"          // a device was updated (or the update failed)
	KindRecovery      Kind = "recovery"       // a stuck device was flashed back
	KindTrustChange   Kind = "trust-change"   // a root was pinned or unpinned
	KindSettingChange Kind = "setting-change" // a setting changed (telemetry consent, endpoint, ...)
	KindAnomaly       Kind = "anomaly-warning"
	// KindTornRecord is written by the log itself after a crash left a torn last line.
	KindTornRecord Kind = "torn-record"
)

// Outcome classes of an entry, the same words for every kind.
const (
	OutcomeOK       = "ok"       // done as asked
	OutcomeRefused  = "refused"  // refused for a stated reason before anything was changed
	OutcomeFailed   = "failed"   // tried and failed (the device failed, an environment error)
	OutcomeCanceled = "canceled" // stopped by the person
)

// Entry is one line of the audit log. The field order is the order on disk.
type Entry struct {
	Seq  uint64    `json:"seq"`
	Prev string    `json:"prev"` // hex SHA-256 of the entry before (GenesisPrev for the first)
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// AppVersion is the fieldflash version that wrote the entry.
	AppVersion string `json:"app_version,omitempty"`
	// Operator is the local account name of the person at the laptop.
	Operator   string `json:"operator,omitempty"`
	Bundle     string `json:"bundle,omitempty"`        // the bundle's file name
	Digest     string `json:"bundle_digest,omitempty"` // verify's bundle digest
	Repository string `json:"repository,omitempty"`
	Target     string `json:"target,omitempty"`
	Hardware   string `json:"hardware,omitempty"` // the device's hardware id (model)
	// Device is the device's pseudonym: a keyed hash of its hardware id and serial
	// number, stable on this installation, meaningless elsewhere.
	Device     string `json:"device,omitempty"`
	From       string `json:"from,omitempty"` // version before
	To         string `json:"to,omitempty"`   // version after (or aimed at)
	Outcome    string `json:"outcome"`
	Result     string `json:"result,omitempty"`      // the engine's word: confirmed, reverted, ...
	ErrorClass string `json:"error_class,omitempty"` // verify's or the engine's code
	DurationMS int64  `json:"duration_ms"`
	Detail     string `json:"detail,omitempty"` // what a trust or setting change was, in words
	Torn       *Torn  `json:"torn,omitempty"`   // KindTornRecord: the bytes it accounts for
	Hash       string `json:"hash,omitempty"`   // hex SHA-256 of the line before ,"hash"
}

// Torn names the bytes a crash left in the log that are no whole entry: where they start,
// how many and their SHA-256, so a verifier checks that the torn-record entry accounts for
// exactly them.
type Torn struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// Duration is DurationMS as a time.Duration.
func (e *Entry) Duration() time.Duration { return time.Duration(e.DurationMS) * time.Millisecond }

// GenesisPrev is the Prev of the first entry.
var GenesisPrev = hex.EncodeToString(make([]byte, sha256.Size))

// hashKey ends every line: `,"hash":"` + 64 hex digits + `"}`.
var hashKey = []byte(`,"hash":"`)

const hashSuffixLen = 9 + 64 + 2 // len(hashKey) + hex + `"}`

// MaxLineBytes bounds one entry on disk: a longer line is no entry this program wrote.
const MaxLineBytes = 64 << 10

// encode turns e (Seq, Prev set; Hash ignored) into its line, without the newline, and
// returns the hash it ends with.
func encode(e Entry) ([]byte, string, error) {
	e.Hash = ""
	body, err := json.Marshal(e)
	if err != nil {
		return nil, "", err
	}
	if len(body) < 2 || body[len(body)-1] != '}' {
		return nil, "", errors.New("audit: entry did not encode as an object")
	}
	body = body[:len(body)-1]
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(body)+hashSuffixLen)
	line = append(line, body...)
	line = append(line, hashKey...)
	line = append(line, h...)
	line = append(line, '"', '}')
	if len(line) > MaxLineBytes {
		return nil, "", fmt.Errorf("audit: entry of %d bytes is longer than %d", len(line), MaxLineBytes)
	}
	return line, h, nil
}

// LineError says why a line is not a whole, intact entry.
type LineError struct {
	Reason string
	// Edited: the line has an entry's whole shape, hash included, but the hash does not
	// match (or what it covers is no entry). A crash leaves a prefix of a line, never
	// this: someone changed it.
	Edited bool
}

func (e *LineError) Error() string { return e.Reason }

// DecodeLine parses one line of the log (without its newline) and checks that its hash
// matches the bytes it covers. It does not check the chain (Seq, Prev): that is the
// verifier's work across lines.
func DecodeLine(line []byte) (*Entry, error) {
	if len(line) > MaxLineBytes {
		return nil, &LineError{Reason: fmt.Sprintf("a line of %d bytes, longer than any entry (%d)", len(line), MaxLineBytes)}
	}
	n := len(line)
	if n < hashSuffixLen+2 || line[0] != '{' || line[n-1] != '}' || line[n-2] != '"' ||
		!bytes.Equal(line[n-hashSuffixLen:n-hashSuffixLen+len(hashKey)], hashKey) {
		return nil, &LineError{Reason: "not an entry: it does not end with its hash"}
	}
	want := line[n-2-64 : n-2]
	var sum [sha256.Size]byte
	if _, err := hex.Decode(sum[:], want); err != nil || !isLowerHex(want) {
		return nil, &LineError{Reason: "not an entry: its hash is not 64 lowercase hex digits"}
	}
	body := line[:n-hashSuffixLen]
	if sha256.Sum256(body) != sum {
		return nil, &LineError{Reason: "its hash does not match its contents", Edited: true}
	}
	var e Entry
	if err := decodeEntry(line, &e); err != nil {
		return nil, &LineError{Reason: "its hash matches but it is not a valid entry: " + err.Error(), Edited: true}
	}
	if e.Hash != string(want) {
		return nil, &LineError{Reason: "it names two hashes", Edited: true}
	}
	if len(e.Prev) != 64 || !isLowerHex([]byte(e.Prev)) {
		return nil, &LineError{Reason: "its link to the entry before is not 64 lowercase hex digits", Edited: true}
	}
	if e.Seq == 0 {
		return nil, &LineError{Reason: "its sequence number is 0 (entries count from 1)", Edited: true}
	}
	if e.Kind == "" {
		return nil, &LineError{Reason: "it has no kind", Edited: true}
	}
	return &e, nil
}

func decodeEntry(line []byte, e *Entry) error {
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(e); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one value on the line")
	}
	return nil
}

var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !lowerHex[c] {
			return false
		}
	}
	return true
}
