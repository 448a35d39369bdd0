package release

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// hostileBundle is a bundle of the fixture's repository whose targets.json is raw.
func hostileBundle(t *testing.T, f *fixture, targets []byte) []byte {
	t.Helper()
	c, err := f.Contents(nil)
	f.must(err)
	c.Targets = targets
	var b bytes.Buffer
	f.must(bundle.Write(&b, c))
	return b.Bytes()
}

func publishedFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.addApp("acme-gw/app-1.0.0.bin", "1.0.0", 1, "")
	f.must(f.Sign("targets", f.targets))
	f.publish()
	return f
}

// A target entry that is null once crashed inspect and merge; both refuse it now.
func TestInspectAndMergeRefuseANullTarget(t *testing.T) {
	f := publishedFixture(t)
	null := []byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":9,"expires":"2030-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`)
	data := hostileBundle(t, f, null)
	if _, err := Inspect(bytes.NewReader(data), int64(len(data))); err == nil || !strings.Contains(err.Error(), "targets.json") {
		t.Fatalf("inspect: %v", err)
	}
	if _, err := f.Merge("targets", null); err == nil || !strings.Contains(err.Error(), "targets.json") {
		t.Fatalf("merge: %v", err)
	}
}

// inspect of a bundle whose targets carry 140,000 junk signatures answers at once.
func TestInspectRefusesJunkSignaturesBeforeParsing(t *testing.T) {
	f := publishedFixture(t)
	var b strings.Builder
	b.WriteString(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":9,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[`)
	for i := range 140_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"keyid":"%06d","sig":""}`, i)
	}
	b.WriteString(`]}`)
	data := hostileBundle(t, f, []byte(b.String()))
	start := time.Now()
	_, err := Inspect(bytes.NewReader(data), int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), "carries 140000 signatures") {
		t.Fatalf("inspect: %v", err)
	}
	t.Logf("refused in %s", time.Since(start))
}
