package app

import (
	"strings"
	"testing"
)

// After a stop, the technician is told what is known of the device, never more: "keeps
// running its current image" only where that is true.
func TestAfterAStopOnlyWhatIsKnownIsSaid(t *testing.T) {
	app := &Identity{Protocol: "smp", Mode: ModeApplication}
	recovery := &Identity{Protocol: "smp", Mode: ModeRecovery}
	classic := &Identity{Protocol: "ymodem", Mode: ModeBootloader}
	for _, c := range []struct {
		name   string
		before *Identity
		step   Step
		bytes  int64
		want   string
	}{
		{"application, mid-transfer", app, StepTransfer, 20000, "keeps running its current image"},
		{"application, trial boot armed", app, StepProbe, 50000, "may be running the new image on trial"},
		{"serial recovery, mid-transfer", recovery, StepTransfer, 20000, "holds a partial image and stays in its bootloader"},
		{"classic bootloader, mid-transfer", classic, StepTransfer, 1024, "holds a partial image"},
		{"classic bootloader, before sending", classic, StepPreflight, 0, "nothing was written"},
	} {
		r := &FlashResult{Before: c.before, Outcome: &Outcome{Step: c.step, Bytes: c.bytes}}
		if got := r.AfterStop(); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.name, got, c.want)
		}
		if c.before.Mode != ModeApplication && strings.Contains(r.AfterStop(), "keeps running its current image") {
			t.Errorf("%s: claims the old image survived a bootloader's in-place write", c.name)
		}
	}
}
