package flasher

import (
	"fmt"
	"strconv"
	"strings"
)

// version is a parsed semantic version. Devices report versions in more than one
// spelling: semver "1.2.3+45", MCUboot's four numbers "1.2.3.45" (the fourth is the build
// number, which like semver build metadata does not order releases) and bare "1.2".
type version struct {
	nums [3]uint64
	pre  []string
}

func parseVersion(s string) (version, error) {
	var v version
	orig := s
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = strings.Split(s[i+1:], ".")
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 4 || parts[0] == "" {
		return v, fmt.Errorf("version %q is not semver (want 1.2.3)", orig)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, fmt.Errorf("version %q is not semver (want 1.2.3)", orig)
		}
		if i < 3 {
			v.nums[i] = n
		}
	}
	return v, nil
}

// compare orders a and b by semver 2.0 precedence.
func (a version) compare(b version) int {
	for i := range a.nums {
		switch {
		case a.nums[i] < b.nums[i]:
			return -1
		case a.nums[i] > b.nums[i]:
			return 1
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, xerr := strconv.ParseUint(x, 10, 64)
		yn, yerr := strconv.ParseUint(y, 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// satisfies reports whether installed meets constraint, e.g. ">=1.2.0 <2.0.0".
func satisfies(installed, constraint string) (bool, error) {
	have, err := parseVersion(installed)
	if err != nil {
		return false, err
	}
	fields := strings.Fields(constraint)
	if len(fields) == 0 {
		return false, fmt.Errorf("empty version constraint")
	}
	for _, f := range fields {
		op := strings.TrimRight(f, "0123456789.+-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZv")
		want, err := parseVersion(f[len(op):])
		if err != nil {
			return false, err
		}
		c := have.compare(want)
		var ok bool
		switch op {
		case ">=":
			ok = c >= 0
		case ">":
			ok = c > 0
		case "=", "==", "":
			ok = c == 0
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		default:
			return false, fmt.Errorf("constraint %q: unknown operator %q", constraint, op)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// sameVersion reports whether two spellings name the same release, build number included
// when both carry one ("1.2.3+45" and "1.2.3.45" match; "1.2.3" matches either).
func sameVersion(a, b string) bool {
	va, err1 := parseVersion(a)
	vb, err2 := parseVersion(b)
	if err1 != nil || err2 != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	if va.compare(vb) != 0 {
		return false
	}
	ba, bb := buildOf(a), buildOf(b)
	return ba == "" || bb == "" || ba == bb
}

func buildOf(s string) string {
	if i := strings.IndexByte(s, '+'); i >= 0 {
		return s[i+1:]
	}
	core := s
	if i := strings.IndexByte(core, '-'); i >= 0 {
		core = core[:i]
	}
	if parts := strings.Split(core, "."); len(parts) == 4 {
		if parts[3] == "0" {
			return ""
		}
		return parts[3]
	}
	return ""
}
