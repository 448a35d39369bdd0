package verify

import "testing"

func TestSemverPrecedenceFollowsTheSpec(t *testing.T) {
	// semver.org, section 11.
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0",
	}
	for i := range order {
		for j := range order {
			a, err := parseSemver(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := parseSemver(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.compare(b); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := parseSemver("1.2.3+45")
	b, _ := parseSemver("1.2.3+46")
	if a.compare(b) != 0 {
		t.Errorf("build metadata took part in precedence")
	}
}

func TestSemverRefusesWhatTheSpecRefuses(t *testing.T) {
	for _, s := range []string{"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "v1.2.3", "1.2.3-", "1.2.3+",
		"1.2.3-01", "1.2.3-a..b", "1.2.3-a_b", "-1.2.3", "1.2.x", "99999999999999999999.0.0", " 1.2.3"} {
		if _, err := parseSemver(s); err == nil {
			t.Errorf("parseSemver(%q) accepted", s)
		}
	}
	for _, s := range []string{"0.0.0", "1.2.3", "1.2.3-rc.1+45", "1.2.3+build.7.sha-5114f85", "1.0.0-0A.is.legal", "1.2.3-x-y-z.--"} {
		if _, err := parseSemver(s); err != nil {
			t.Errorf("parseSemver(%q): %v", s, err)
		}
	}
}

func TestVersionConstraints(t *testing.T) {
	for _, c := range []struct {
		constraint, version string
		allows              bool
	}{
		{">=1.2.0", "1.2.0", true},
		{">=1.2.0", "1.1.9", false},
		{">=1.2.0 <2.0.0", "1.9.9", true},
		{">=1.2.0 <2.0.0", "2.0.0", false},
		{">=1.2.0, <2.0.0", "2.0.0-rc.1", true}, // a pre-release of 2.0.0 is below 2.0.0
		{">1.0.0", "1.0.0", false},
		{"<=3.0.0", "3.0.0", true},
		{"=2.0.0", "2.0.0+7", true},
		{"2.0.0", "2.0.1", false},
		{"==2.0.0", "2.0.0", true},
		{">= 1.4.0", "1.4.0", true},
	} {
		cs, err := parseConstraint(c.constraint)
		if err != nil {
			t.Fatalf("%q: %v", c.constraint, err)
		}
		v, _ := parseSemver(c.version)
		if got := cs.allows(v); got != c.allows {
			t.Errorf("%q allows %s = %v, want %v", c.constraint, c.version, got, c.allows)
		}
	}
	for _, bad := range []string{"", ">=", ">=1.2", "~1.2.3", ">=1.2.0 <two"} {
		if _, err := parseConstraint(bad); err == nil {
			t.Errorf("parseConstraint(%q) accepted", bad)
		}
	}
}
