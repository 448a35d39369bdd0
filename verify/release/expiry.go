package release

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseExpiry reads an expiry as a lifetime from now ("365d", "12w", "36h", "90m") or as a
// date ("2036-01-01" at midnight UTC, or RFC 3339 "2036-01-01T00:00:00Z").
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	bad := fmt.Errorf("expiry %q: write a lifetime like 365d, 12w or 36h, or a date like 2036-01-01", s)
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, bad
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	unit := s[len(s)-1]
	var per time.Duration
	switch unit {
	case 'd':
		per = 24 * time.Hour
	case 'w':
		per = 7 * 24 * time.Hour
	case 'h':
		per = time.Hour
	case 'm':
		per = time.Minute
	default:
		return time.Time{}, bad
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	// 100 years is far beyond any sane lifetime and keeps the arithmetic from overflowing.
	if err != nil || n <= 0 || time.Duration(n)*per > 100*365*24*time.Hour || time.Duration(n) > (100*365*24*time.Hour)/per {
		return time.Time{}, bad
	}
	return now.UTC().Add(time.Duration(n) * per).Truncate(time.Second), nil
}
