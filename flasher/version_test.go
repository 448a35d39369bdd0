package flasher

import "testing"

func TestRequirementConstraints(t *testing.T) {
	cases := []struct {
		have, constraint string
		ok               bool
	}{
		{"1.3.0", ">=1.2.0 <2.0.0", true},
		{"2.0.0", ">=1.2.0 <2.0.0", false},
		{"2.0.0-rc.1", "<2.0.0", true},
		{"2.0.0-rc.2", ">2.0.0-rc.1", true},
		{"2.0.0-rc.10", ">2.0.0-rc.9", true},
		{"2.0.0-alpha", "<2.0.0-alpha.1", true},
		{"1.2.3.45", "=1.2.3", true}, // MCUboot's build number does not order releases
		{"1.2.3+45", "<=1.2.3", true},
		{"v1.2", ">=1.2.0", true},
		{"0.9.2", ">0.9.1", true},
		{"0.9.1", ">0.9.1", false},
	}
	for _, c := range cases {
		ok, err := satisfies(c.have, c.constraint)
		if err != nil || ok != c.ok {
			t.Errorf("%s against %q: %v, %v; want %v", c.have, c.constraint, ok, err, c.ok)
		}
	}
	for _, bad := range []string{"~1.2", ">=x.y", ""} {
		if _, err := satisfies("1.0.0", bad); err == nil {
			t.Errorf("constraint %q accepted", bad)
		}
	}
}

func TestSameVersionAcrossSpellings(t *testing.T) {
	if !sameVersion("1.2.3+45", "1.2.3.45") || !sameVersion("1.2.3", "1.2.3.45") {
		t.Error("MCUboot and semver spellings of one release differ")
	}
	if sameVersion("1.2.3+45", "1.2.3.46") || sameVersion("1.2.3", "1.2.4") {
		t.Error("different releases match")
	}
}

// FuzzSatisfies feeds versions as devices report them (outside bytes) and constraints.
func FuzzSatisfies(f *testing.F) {
	f.Add("1.2.3.45", ">=1.2.0 <2.0.0")
	f.Add("2.0.0-rc.1+build", "<2.0.0")
	f.Add("v1", "=1")
	f.Fuzz(func(t *testing.T, have, constraint string) {
		ok, err := satisfies(have, constraint)
		if err != nil && ok {
			t.Fatal("satisfied with an error")
		}
		if v, err := parseVersion(have); err == nil {
			if v.compare(v) != 0 {
				t.Fatalf("%q is not equal to itself", have)
			}
			if !sameVersion(have, have) {
				t.Fatalf("%q is not the same as itself", have)
			}
		}
	})
}
