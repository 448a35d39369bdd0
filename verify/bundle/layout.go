package bundle

import (
	"strconv"
	"strings"
)

// The two folders of a bundle. Every entry lives directly in one of them.
const (
	MetadataDir = "metadata/"
	TargetsDir  = "targets/"
)

// MaxRoleNameLength keeps "<role>.json" within the 100-byte name field of a ustar header
// (the "metadata" folder goes in the prefix field), so no bundle ever needs a pax or GNU
// long-name extension.
const MaxRoleNameLength = 95

type entryKind int

const (
	entryDir entryKind = iota
	entryRoot
	entryTimestamp
	entrySnapshot
	entryTargets
	entryDelegated
	entryPayload
)

// entryName is an archive name understood against the layout.
type entryName struct {
	kind    entryKind
	version int64  // entryRoot
	role    string // entryDelegated
	sha256  string // entryPayload, lowercase hex
}

func (n entryName) isMetadata() bool { return n.kind >= entryRoot && n.kind <= entryDelegated }

// parseName checks an archive entry name against the layout. The order matters: names
// that try to escape are reported as such before anything else is said about them.
func parseName(name string) (entryName, *Error) {
	if name == "" {
		return entryName{}, refuse(KindFormat, name, "entry without a name")
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || (len(name) > 1 && name[1] == ':') {
		return entryName{}, refuse(KindUnsafePath, name, "absolute path; bundle entries are relative (metadata/…, targets/…)")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return entryName{}, refuse(KindUnsafePath, name, "path climbs out of the bundle with \"..\"")
		}
	}
	switch name {
	case MetadataDir, TargetsDir:
		return entryName{kind: entryDir}, nil
	}
	if file, ok := strings.CutPrefix(name, MetadataDir); ok {
		return parseMetadataName(name, file)
	}
	if hash, ok := strings.CutPrefix(name, TargetsDir); ok {
		if !IsSHA256Hex(hash) {
			return entryName{}, refuse(KindUnsafePath, name, "a payload is named targets/<sha256>, 64 lowercase hex digits of its SHA-256")
		}
		return entryName{kind: entryPayload, sha256: hash}, nil
	}
	return entryName{}, refuse(KindUnsafePath, name, "name outside the bundle layout (metadata/<role>.json, targets/<sha256>)")
}

func parseMetadataName(name, file string) (entryName, *Error) {
	base, ok := strings.CutSuffix(file, ".json")
	if !ok || strings.Contains(base, "/") {
		return entryName{}, refuse(KindUnsafePath, name, "name outside the bundle layout (metadata/<role>.json)")
	}
	switch base {
	case "timestamp":
		return entryName{kind: entryTimestamp}, nil
	case "snapshot":
		return entryName{kind: entrySnapshot}, nil
	case "targets":
		return entryName{kind: entryTargets}, nil
	case "root":
		return entryName{}, refuse(KindUnsafePath, name, "root metadata is carried versioned, as metadata/<version>.root.json")
	}
	if v, ok := strings.CutSuffix(base, ".root"); ok && v != "" && isDigits(v) {
		version, err := strconv.ParseInt(v, 10, 64)
		if err != nil || version < 1 || v[0] == '0' {
			return entryName{}, refuse(KindUnsafePath, name, "root version must be a positive decimal number without leading zeros")
		}
		return entryName{kind: entryRoot, version: version}, nil
	}
	if err := CheckRoleName(base); err != "" {
		return entryName{}, refuse(KindUnsafePath, name, "%s", err)
	}
	return entryName{kind: entryDelegated, role: base}, nil
}

// CheckRoleName says why role cannot be a delegated role's file name, or "" when it can.
func CheckRoleName(role string) string {
	switch {
	case role == "":
		return "empty role name"
	case len(role) > MaxRoleNameLength:
		return "role name longer than 95 characters"
	case role == "." || role == "..":
		return "role name \".\" or \"..\""
	case role == "root" || role == "timestamp" || role == "snapshot" || role == "targets":
		return "top-level role name used as a delegated role"
	}
	if _, ok := strings.CutSuffix(role, ".root"); ok && isDigits(strings.TrimSuffix(role, ".root")) {
		return "delegated role name looks like a root version (<N>.root)"
	}
	for i := 0; i < len(role); i++ {
		c := role[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "role name has a character outside [A-Za-z0-9._-]"
		}
	}
	return ""
}

// IsSHA256Hex reports whether s is 64 lowercase hex digits, the only way a payload is named.
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func rootName(version int64) string {
	return MetadataDir + strconv.FormatInt(version, 10) + ".root.json"
}

func roleName(role string) string { return MetadataDir + role + ".json" }

func payloadName(sha string) string { return TargetsDir + sha }
