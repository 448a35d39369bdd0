package verify

import (
	"fmt"
	"strconv"
	"strings"
)

// semver is a Semantic Versioning 2.0.0 version. Build metadata is kept for display only:
// it never takes part in precedence.
type semver struct {
	major, minor, patch uint64
	pre                 []string
	build               string
}

func parseSemver(s string) (semver, error) {
	var v semver
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.build = rest[i+1:]
		rest = rest[:i]
		if err := checkIdentifiers(v.build, false); err != nil {
			return semver{}, fmt.Errorf("version %q: build metadata: %v", s, err)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		if err := checkIdentifiers(pre, true); err != nil {
			return semver{}, fmt.Errorf("version %q: pre-release: %v", s, err)
		}
		v.pre = strings.Split(pre, ".")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return semver{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
	}
	nums := [3]*uint64{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		if !isNumeric(p) || (len(p) > 1 && p[0] == '0') {
			return semver{}, fmt.Errorf("version %q: %q is not a number without leading zeros", s, p)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return semver{}, fmt.Errorf("version %q: %q is too large", s, p)
		}
		*nums[i] = n
	}
	return v, nil
}

// checkIdentifiers checks dot-separated identifiers of [0-9A-Za-z-]; numeric pre-release
// identifiers may not have leading zeros.
func checkIdentifiers(s string, pre bool) error {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return fmt.Errorf("empty identifier")
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return fmt.Errorf("identifier %q has a character outside [0-9A-Za-z-]", id)
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("numeric identifier %q has a leading zero", id)
		}
	}
	return nil
}

func isNumeric(s string) bool {
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

// compare returns -1, 0 or 1 as v has lower, equal or higher precedence than w.
func (v semver) compare(w semver) int {
	for _, d := range [][2]uint64{{v.major, w.major}, {v.minor, w.minor}, {v.patch, w.patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	// A pre-release has lower precedence than the release itself.
	switch {
	case len(v.pre) == 0 && len(w.pre) == 0:
		return 0
	case len(v.pre) == 0:
		return 1
	case len(w.pre) == 0:
		return -1
	}
	for i := 0; i < len(v.pre) && i < len(w.pre); i++ {
		if c := compareIdentifier(v.pre[i], w.pre[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.pre) < len(w.pre):
		return -1
	case len(v.pre) > len(w.pre):
		return 1
	}
	return 0
}

func compareIdentifier(a, b string) int {
	an, bn := isNumeric(a), isNumeric(b)
	switch {
	case an && bn:
		// Compare by length first: numeric identifiers may exceed uint64.
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case an:
		return -1 // numeric identifiers sort before alphanumeric ones
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// constraint is a conjunction of comparisons, as written in Requirement.Version:
// ">=1.2.0 <2.0.0". A bare version means "=".
type constraint []comparison

type comparison struct {
	op string // one of ">=", "<=", ">", "<", "="
	v  semver
}

func parseConstraint(s string) (constraint, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty version constraint")
	}
	var c constraint
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		op := ""
		for _, o := range []string{">=", "<=", "==", ">", "<", "="} {
			if strings.HasPrefix(f, o) {
				op = o
				break
			}
		}
		ver := f[len(op):]
		if ver == "" && op != "" && i+1 < len(fields) {
			// ">= 1.2.0": the operator stands apart from its version.
			i++
			ver = fields[i]
		}
		if op == "" || op == "==" {
			op = "="
		}
		v, err := parseSemver(ver)
		if err != nil {
			return nil, fmt.Errorf("constraint %q: %v", s, err)
		}
		c = append(c, comparison{op: op, v: v})
	}
	return c, nil
}

func (c constraint) allows(v semver) bool {
	for _, cmp := range c {
		r := v.compare(cmp.v)
		ok := false
		switch cmp.op {
		case ">=":
			ok = r >= 0
		case "<=":
			ok = r <= 0
		case ">":
			ok = r > 0
		case "<":
			ok = r < 0
		case "=":
			ok = r == 0
		}
		if !ok {
			return false
		}
	}
	return true
}
