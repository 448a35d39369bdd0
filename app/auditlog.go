package app

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/app/telemetry"
)

// Words of the audit log a face needs (docs/audit.md).
type (
	// AuditEntry is one entry of the audit log.
	AuditEntry = audit.Entry
	// AuditReport is what verifying the log found.
	AuditReport = audit.Report
	// AuditHead is the newest entry's number and hash: an anchor once seen elsewhere.
	AuditHead = audit.Head
	// AuditAnchor is a head the log must still hold.
	AuditAnchor = audit.Anchor
	// AuditStats is the health summary of a period.
	AuditStats = audit.Stats
	// AuditRate is the updates of one model or bundle in a period.
	AuditRate = audit.Rate
	// TelemetryEvent is one telemetry report, exactly the fields that may be sent.
	TelemetryEvent = telemetry.Event
)

// auditHome is the home whose log a face reads: the demo keeps its own.
func auditHome(demo bool) (string, error) {
	home, err := Home()
	if err != nil {
		return "", err
	}
	if demo {
		home = filepath.Join(home, "demo")
	}
	return home, nil
}

// AuditLogPath is the audit log the faces read (demo: the demo's own).
func AuditLogPath(demo bool) (string, error) {
	h, err := auditHome(demo)
	if err != nil {
		return "", err
	}
	return AuditPath(h), nil
}

func anchorsPath(home string) string { return filepath.Join(home, "audit", "anchors.jsonl") }

// AnchorAudit returns the log's head and remembers it as an anchor (source says where it
// was shown or sent), so a later `audit verify` notices a tail cut off below it.
func AnchorAudit(home, source string) (AuditHead, error) {
	l, err := audit.Open(AuditPath(home))
	if err != nil {
		return AuditHead{}, err
	}
	h := l.Head()
	l.Close()
	if h.Seq == 0 {
		return h, nil
	}
	return h, rememberAnchor(home, audit.Anchor{Head: h, Source: source})
}

func rememberAnchor(home string, a audit.Anchor) error {
	if a.Time.IsZero() {
		a.Time = time.Now().UTC()
	}
	// The newest remembered anchor of the same entry is enough.
	known, _ := RememberedAnchors(home)
	for _, k := range known {
		if k.Seq == a.Seq && k.Hash == a.Hash && k.Source == a.Source {
			return nil
		}
	}
	path := anchorsPath(home)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit anchors %s: %v", path, err)
	}
	data, _ := json.Marshal(a)
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RememberedAnchors are the heads printed, exported or sent before.
func RememberedAnchors(home string) ([]AuditAnchor, error) {
	f, err := os.Open(anchorsPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditAnchor
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a AuditAnchor
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Seq > 0 && len(a.Hash) == 64 {
			out = append(out, a)
		}
	}
	return out, nil
}

// ParseAnchor reads an anchor as people copy it: SEQ:HASH.
func ParseAnchor(s string) (AuditAnchor, error) {
	seqText, h, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 {
		return AuditAnchor{}, fmt.Errorf("anchor %q: write it as SEQ:HASH, as `fieldflash audit anchor` prints it", s)
	}
	h = strings.ToLower(h)
	if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
		return AuditAnchor{}, fmt.Errorf("anchor %q: the hash must be 64 hex digits", s)
	}
	return AuditAnchor{Head: AuditHead{Seq: seq, Hash: h}, Source: "given on the command line"}, nil
}

// AuditQuery filters a listing.
type AuditQuery struct {
	Since time.Time
	// Device is a device pseudonym (or its first digits), or the device's identity as
	// fieldflash names it (hardware-id/serial), whose pseudonym is computed.
	Device string
	Kind   string
	Demo   bool
}

// ListAudit reads the audit log (every intact entry, oldest first, filtered) and
// verifies it against the remembered anchors: the report says where the chain broke.
func ListAudit(q AuditQuery) ([]AuditEntry, *AuditReport, error) {
	home, err := auditHome(q.Demo)
	if err != nil {
		return nil, nil, err
	}
	anchors, _ := RememberedAnchors(home)
	entries, rep, err := audit.ReadFile(AuditPath(home), anchors)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log %s: %v", AuditPath(home), err)
	}
	var pseudonym string
	if q.Device != "" {
		real, _ := Home()
		pseudonym = DevicePseudonym(real, q.Device)
	}
	out := entries[:0]
	for _, e := range entries {
		if !q.Since.IsZero() && e.Time.Before(q.Since) {
			continue
		}
		if q.Kind != "" && string(e.Kind) != q.Kind {
			continue
		}
		if q.Device != "" && (e.Device == "" || !strings.HasPrefix(e.Device, strings.ToLower(q.Device)) && e.Device != pseudonym) {
			continue
		}
		out = append(out, e)
	}
	return out, rep, nil
}

// VerifyAudit checks a log: file "" is this laptop's own log, checked against every
// remembered anchor too; an exported file is checked against the anchors given.
func VerifyAudit(file string, demo bool, anchors []AuditAnchor) (*AuditReport, string, error) {
	path := file
	if file == "" {
		home, err := auditHome(demo)
		if err != nil {
			return nil, "", err
		}
		path = AuditPath(home)
		known, _ := RememberedAnchors(home)
		anchors = append(known, anchors...)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			rep, _ := audit.Verify(strings.NewReader(""), anchors)
			return rep, path, nil
		}
	}
	rep, err := audit.VerifyFile(path, anchors)
	if err != nil {
		return nil, path, fmt.Errorf("audit log %s: %v", path, err)
	}
	return rep, path, nil
}

// ExportAudit copies the log, as it is, to dst (written whole or not at all), verifies
// the copy, and remembers its head as an anchor.
func ExportAudit(dst string, demo bool) (*AuditReport, error) {
	home, err := auditHome(demo)
	if err != nil {
		return nil, err
	}
	src, err := os.Open(AuditPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("the audit log is empty: nothing has been verified or flashed here yet")
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := copyFileAtomic(dst, src); err != nil {
		return nil, fmt.Errorf("export %s: %v", dst, err)
	}
	anchors, _ := RememberedAnchors(home)
	rep, err := audit.VerifyFile(dst, anchors)
	if err != nil {
		return nil, err
	}
	if rep.Head.Seq > 0 {
		rememberAnchor(home, audit.Anchor{Head: rep.Head, Source: "exported to " + filepath.Base(dst)})
	}
	return rep, nil
}

// copyFileAtomic writes r to path through a temporary file, fsynced and renamed.
func copyFileAtomic(path string, r io.Reader) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(abs)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return err
	}
	return syncDir(dir)
}

// AuditHealth is the health summary of the last days days (default 30).
func AuditHealth(days int, demo bool) (*AuditStats, error) {
	if days <= 0 {
		days = 30
	}
	entries, _, err := ListAudit(AuditQuery{Demo: demo})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	st := audit.Summarize(entries, now.Add(-time.Duration(days)*24*time.Hour), now)
	return &st, nil
}
