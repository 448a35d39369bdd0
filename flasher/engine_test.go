package flasher_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/verify"
)

// These tests drive the engine through the scripted device of device_test.go (below the
// protocol boundary; see there).

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bundleFile writes a file that holds payload at an offset, between other bytes, as a
// real bundle does, and returns the verdict verify would give on it.
func bundleFile(t *testing.T, payload []byte, meta verify.TargetMeta) *verify.Verified {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acme-2.0.0.fwb")
	head := randomBytes(99, 1536)
	file := append(append(slices.Clone(head), payload...), make([]byte, 1024)...)
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	return &verify.Verified{
		Bundle: path,
		Targets: []verify.Target{{
			Path:   "app.bin",
			Length: int64(len(payload)),
			SHA256: hex.EncodeToString(sum[:]),
			Meta:   meta,
			Offset: int64(len(head)),
		}},
	}
}

func appMeta() verify.TargetMeta {
	return verify.TargetMeta{HardwareIDs: []string{"acme-gw-r2"}, Version: "2.0.0", ReleaseCounter: 5, Component: "app",
		Protocol: verify.ProtocolHints{Protocols: []string{"smp"}}}
}

// bench is one technician's setup: a device on a cable, a bundle, a journal directory.
type bench struct {
	t       *testing.T
	dev     *device
	v       *verify.Verified
	payload []byte
	dir     string
	opt     flasher.PlanOptions

	mu     sync.Mutex
	events []flasher.Event
}

func newBench(t *testing.T) *bench {
	old := randomBytes(1, 8<<10)
	payload := randomBytes(2, 10<<10+77)
	dev := newDevice(old, "1.4.0")
	dev.versions[sha256.Sum256(payload)] = "2.0.0"
	b := &bench{t: t, dev: dev, payload: payload, v: bundleFile(t, payload, appMeta()), dir: t.TempDir()}
	b.opt = flasher.PlanOptions{
		Port:           "/dev/ttyACM0",
		Device:         "acme-gw-r2/SN0042",
		Reconnect:      func(ctx context.Context) (flasher.Driver, error) { return dev.connect(), nil },
		Retry:          flasher.RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Tries: 5},
		RequestTimeout: time.Second,
		StallTimeout:   2 * time.Second,
		ProbeTimeout:   5 * time.Second,
	}
	return b
}

func (b *bench) plan() *flasher.Plan {
	b.t.Helper()
	d := b.dev.connect()
	id, err := d.Identify(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	p, err := flasher.NewPlan(b.v, "", id, b.opt)
	if err != nil {
		b.t.Fatalf("NewPlan: %v", err)
	}
	b.t.Cleanup(func() { p.Close() })
	return p
}

func (b *bench) journal(p *flasher.Plan) *flasher.Journal {
	b.t.Helper()
	j, err := flasher.OpenJournal(b.dir, p.JournalKey())
	if err != nil {
		b.t.Fatal(err)
	}
	j.Every = 1 << 10
	return j
}

// flash runs one update as the app would after starting: a fresh plan, a fresh journal
// handle, a fresh link.
func (b *bench) flash(ctx context.Context) (*flasher.Outcome, error, *flasher.Journal) {
	b.t.Helper()
	p := b.plan()
	j := b.journal(p)
	b.mu.Lock()
	b.events = nil
	b.mu.Unlock()
	o, err := flasher.Run(ctx, p, b.dev.connect(), j, func(e flasher.Event) {
		b.mu.Lock()
		b.events = append(b.events, e)
		b.mu.Unlock()
	})
	if o == nil {
		b.t.Fatal("Run returned no outcome")
	}
	return o, err, j
}

func (b *bench) kinds(k flasher.Kind) []flasher.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []flasher.Event
	for _, e := range b.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (b *bench) stepsStarted() []flasher.Step {
	var s []flasher.Step
	for _, e := range b.kinds(flasher.KindStepStart) {
		s = append(s, e.Step)
	}
	return s
}

func readJournal(t *testing.T, path string) flasher.JournalEntry {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e flasher.JournalEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("journal %s: %v", path, err)
	}
	return e
}

func (b *bench) wantNewImageConfirmed() {
	b.t.Helper()
	if got := b.dev.running(); got != "2.0.0" || !b.dev.confirmed {
		b.t.Fatalf("device runs %q (confirmed %v), want 2.0.0 confirmed", got, b.dev.confirmed)
	}
}

func (b *bench) wantOldImageConfirmed() {
	b.t.Helper()
	if got := b.dev.running(); got != "1.4.0" || !b.dev.confirmed {
		b.t.Fatalf("device runs %q (confirmed %v), want 1.4.0 confirmed", got, b.dev.confirmed)
	}
}

func TestFlashConfirmsAfterHealthyTrialBoot(t *testing.T) {
	b := newBench(t)
	o, err, j := b.flash(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if o.Result != flasher.ResultConfirmed || o.Bytes != int64(len(b.payload)) || o.ResumedFrom != 0 {
		t.Fatalf("outcome %+v", o)
	}
	b.wantNewImageConfirmed()
	want := []flasher.Step{flasher.StepPreflight, flasher.StepTransfer, flasher.StepCheck, flasher.StepActivate, flasher.StepReset, flasher.StepProbe, flasher.StepConfirm}
	if got := b.stepsStarted(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	prog := b.kinds(flasher.KindProgress)
	if len(prog) == 0 || prog[len(prog)-1].Bytes != int64(len(b.payload)) || prog[len(prog)-1].Total != int64(len(b.payload)) {
		t.Fatalf("progress events end at %+v", prog[len(prog)-1])
	}
	if out := b.kinds(flasher.KindOutcome); len(out) != 1 || out[0].Outcome.Result != flasher.ResultConfirmed {
		t.Fatalf("outcome events %+v", out)
	}
	if e := readJournal(t, j.Path()); !e.Finished || e.Outcome == nil || e.Outcome.Result != flasher.ResultConfirmed {
		t.Fatalf("journal %+v", e)
	}
	// Activate must come after Check, Confirm after the device came back with the image.
	calls := strings.Join(b.dev.calls, " ")
	if !strings.Contains(calls, "check activate reset") || !strings.HasSuffix(calls, "identify confirm") {
		t.Fatalf("device saw %s", calls)
	}
}

func TestFlashAgainFindsImageAlreadyCurrent(t *testing.T) {
	b := newBench(t)
	if _, err, _ := b.flash(context.Background()); err != nil {
		t.Fatal(err)
	}
	writes := len(b.dev.writes)
	o, err, _ := b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultAlreadyCurrent {
		t.Fatalf("second run: %+v, %v", o, err)
	}
	if len(b.dev.writes) != writes {
		t.Fatal("the second run uploaded again")
	}
}

// TestFlashResumesAfterCablePull pulls the cable twice mid-transfer: the engine backs
// off, reconnects, asks the device where it stopped, and continues from there.
func TestFlashResumesAfterCablePull(t *testing.T) {
	b := newBench(t)
	pulled := map[int64]bool{}
	out := 0 // reconnects that find no port yet
	b.opt.Reconnect = func(ctx context.Context) (flasher.Driver, error) {
		if out > 0 {
			out--
			return nil, errLinkDown
		}
		return b.dev.connect(), nil
	}
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && (acked == 2048 || acked == 6144) && !pulled[acked] {
			pulled[acked] = true
			b.dev.pull()
			if acked == 6144 {
				out = 2 // the second time the cable stays out a while
			}
		}
		return nil
	}
	o, err, _ := b.flash(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b.wantNewImageConfirmed()
	if !slices.Equal(b.dev.writes, []int64{0, 2048, 6144}) {
		t.Fatalf("writes started at %v, want [0 2048 6144]", b.dev.writes)
	}
	if o.Bytes != int64(len(b.payload)) || o.Retries != 4 {
		t.Fatalf("sent %d bytes with %d retries, want %d with 4", o.Bytes, o.Retries, len(b.payload))
	}
	retries := b.kinds(flasher.KindRetry)
	if len(retries) != 4 || retries[0].Step != flasher.StepTransfer || retries[0].Err == nil {
		t.Fatalf("retry events %+v", retries)
	}
	hints := b.kinds(flasher.KindHint)
	if len(hints) != 1 || !strings.Contains(hints[0].Message, "fieldflash recover --port /dev/ttyACM0") {
		t.Fatalf("hint events %+v", hints)
	}
}

func TestFlashGivesUpWithHintWhenCableStaysOut(t *testing.T) {
	b := newBench(t)
	out := false
	b.opt.Reconnect = func(ctx context.Context) (flasher.Driver, error) {
		if out {
			return nil, errLinkDown
		}
		return b.dev.connect(), nil
	}
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && acked == 4096 {
			out = true
			b.dev.pull()
		}
		return nil
	}
	o, err, j := b.flash(context.Background())
	if flasher.CodeOf(err) != flasher.CodeDeviceLost || o.Result != flasher.ResultInterrupted {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if !strings.Contains(err.Error(), "fieldflash recover --port /dev/ttyACM0") {
		t.Fatalf("error gives no next step: %v", err)
	}
	if e := readJournal(t, j.Path()); e.Finished || e.Step != flasher.StepTransfer || e.Acked < 3072 {
		t.Fatalf("journal after giving up: %+v", e)
	}
	b.wantOldImageConfirmed()

	// The technician plugs the cable back in and runs the same update again.
	out = false
	b.dev.hook = nil
	o, err, _ = b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultConfirmed || o.ResumedFrom != 4096 {
		t.Fatalf("after replug: %+v, %v", o, err)
	}
	b.wantNewImageConfirmed()
}

// TestFlashResumesAfterCrashAtEveryStep kills the app (as SIGKILL would: the journal
// stays as it was at that instant) at each step, starts it again, and checks that the
// second run goes on from where the first stopped instead of starting over.
func TestFlashResumesAfterCrashAtEveryStep(t *testing.T) {
	cases := []struct {
		name    string
		verb    string // the device verb during which the app dies
		nth     int    // ... the nth time it is called
		journal flasher.Step
		upload  bool // the second run still has bytes to send
		resets  int  // resets the device saw in all
	}{
		{"mid-transfer", "write-chunk", 20, flasher.StepTransfer, true, 1},
		{"check", "check", 1, flasher.StepCheck, false, 1},
		{"activate", "activate", 1, flasher.StepActivate, false, 1},
		{"reset", "reset", 1, flasher.StepReset, false, 2},
		{"probe", "identify", 3, flasher.StepProbe, false, 1}, // 1: planning, 2: preflight, 3: probe
		{"confirm", "confirm", 1, flasher.StepConfirm, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t)
			ctx, cancel := context.WithCancel(context.Background())
			var snapshot []byte
			var path string
			seen := 0
			b.dev.hook = func(verb string, acked int64) error {
				if verb != c.verb {
					return nil
				}
				if seen++; seen != c.nth {
					return nil
				}
				var err error
				if snapshot, err = os.ReadFile(path); err != nil {
					t.Errorf("journal at crash: %v", err)
				}
				cancel()
				return context.Canceled
			}
			p := b.plan()
			j := b.journal(p)
			path = j.Path()
			_, err := flasher.Run(ctx, p, b.dev.connect(), j, nil)
			if flasher.CodeOf(err) != flasher.CodeCancelled {
				t.Fatalf("first run: %v", err)
			}
			// The process died: whatever it wrote after the crash instant never happened.
			if err := os.WriteFile(path, snapshot, 0o600); err != nil {
				t.Fatal(err)
			}
			if e := readJournal(t, path); e.Step != c.journal || e.Finished {
				t.Fatalf("journal at crash says %s (finished %v), want %s", e.Step, e.Finished, c.journal)
			}
			sentBefore := len(b.dev.writes)
			b.dev.hook = nil

			o, err, j2 := b.flash(context.Background())
			if err != nil || o.Result != flasher.ResultConfirmed {
				t.Fatalf("second run: %+v, %v", o, err)
			}
			b.wantNewImageConfirmed()
			uploaded := len(b.dev.writes) > sentBefore && o.Bytes > 0
			if uploaded != c.upload {
				t.Fatalf("second run uploaded %d bytes from %v, want upload=%v", o.Bytes, b.dev.writes[sentBefore:], c.upload)
			}
			if c.upload && (o.ResumedFrom == 0 || o.Bytes != int64(len(b.payload))-o.ResumedFrom) {
				t.Fatalf("second run resumed from %d and sent %d, want the rest from the device's offset", o.ResumedFrom, o.Bytes)
			}
			if n := b.dev.called("reset"); n != c.resets {
				t.Fatalf("device reset %d times, want %d", n, c.resets)
			}
			if e := readJournal(t, j2.Path()); !e.Finished || e.Runs != 2 {
				t.Fatalf("journal after resume: %+v", e)
			}
		})
	}
}

func TestFlashRevertsWhenNewImageDoesNotBoot(t *testing.T) {
	b := newBench(t)
	b.dev.bootFails = true
	o, err, j := b.flash(context.Background())
	if flasher.CodeOf(err) != flasher.CodeProbe || o.Result != flasher.ResultReverted {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if b.dev.called("confirm") != 0 {
		t.Fatal("the engine confirmed an image that did not boot")
	}
	b.wantOldImageConfirmed()
	if o.Running != "1.4.0" || !strings.Contains(err.Error(), "booted 1.4.0") {
		t.Fatalf("outcome says the device runs %q: %v", o.Running, err)
	}
	if e := readJournal(t, j.Path()); !e.Finished || e.Outcome.Result != flasher.ResultReverted {
		t.Fatalf("journal %+v", e)
	}
}

func TestFlashRevertsWhenHealthCheckFails(t *testing.T) {
	for _, withRevert := range []bool{true, false} {
		name := "revert-verb"
		if !withRevert {
			name = "reset-without-confirm"
		}
		t.Run(name, func(t *testing.T) {
			b := newBench(t)
			b.dev.caps.Revert = withRevert
			b.opt.Health = func(ctx context.Context, id *flasher.Identity) error {
				return errors.New("radio self-test: no answer from the modem")
			}
			o, err, _ := b.flash(context.Background())
			if flasher.CodeOf(err) != flasher.CodeProbe || o.Result != flasher.ResultReverted {
				t.Fatalf("outcome %+v, err %v", o, err)
			}
			if b.dev.called("confirm") != 0 {
				t.Fatal("the engine confirmed an unhealthy image")
			}
			if (b.dev.called("revert") == 1) != withRevert {
				t.Fatalf("revert called %d times", b.dev.called("revert"))
			}
			b.wantOldImageConfirmed()
			if !strings.Contains(err.Error(), "radio self-test") {
				t.Fatalf("error does not say why: %v", err)
			}
		})
	}
}

func TestFlashLeavesTrialUnconfirmedWhenDeviceDoesNotComeBack(t *testing.T) {
	b := newBench(t)
	b.opt.ProbeTimeout = 300 * time.Millisecond
	b.opt.RequestTimeout = 40 * time.Millisecond
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "reset" {
			b.dev.silent = true
		}
		return nil
	}
	o, err, j := b.flash(context.Background())
	if flasher.CodeOf(err) != flasher.CodeProbe || o.Result != flasher.ResultNotConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if b.dev.called("confirm") != 0 {
		t.Fatal("confirmed without a passing probe")
	}
	hints := b.kinds(flasher.KindHint)
	if len(hints) == 0 || !strings.Contains(hints[len(hints)-1].Message, "not confirmed") {
		t.Fatalf("hints %+v", hints)
	}
	if e := readJournal(t, j.Path()); e.Finished || e.Step != flasher.StepProbe {
		t.Fatalf("journal %+v, want open at probe", e)
	}

	// The device comes back late, still in its trial boot: running again confirms it
	// without uploading.
	b.dev.silent, b.dev.hook = false, nil
	writes := len(b.dev.writes)
	o, err, _ = b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultConfirmed || len(b.dev.writes) != writes {
		t.Fatalf("rerun: %+v, %v", o, err)
	}
	b.wantNewImageConfirmed()
}

func TestFlashAfterUnconfirmedPowerCycleReportsRevert(t *testing.T) {
	b := newBench(t)
	b.opt.ProbeTimeout = 200 * time.Millisecond
	b.opt.RequestTimeout = 40 * time.Millisecond
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "reset" {
			b.dev.silent = true
		}
		return nil
	}
	if _, err, _ := b.flash(context.Background()); flasher.CodeOf(err) != flasher.CodeProbe {
		t.Fatal(err)
	}
	// The technician power-cycles: MCUboot reverts the unconfirmed trial boot.
	b.dev.mu.Lock()
	b.dev.silent, b.dev.hook = false, nil
	b.dev.boot()
	b.dev.mu.Unlock()
	b.wantOldImageConfirmed()
	o, err, _ := b.flash(context.Background())
	if flasher.CodeOf(err) != flasher.CodeProbe || o.Result != flasher.ResultReverted || b.dev.called("confirm") != 0 {
		t.Fatalf("rerun: %+v, %v", o, err)
	}
}

func TestCancelLeavesResumableJournal(t *testing.T) {
	b := newBench(t)
	ctx, cancel := context.WithCancel(context.Background())
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && acked == 5120 {
			cancel()
		}
		return nil
	}
	o, err, j := b.flash(ctx)
	if flasher.CodeOf(err) != flasher.CodeCancelled || !errors.Is(err, context.Canceled) || o.Result != flasher.ResultInterrupted {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	e := readJournal(t, j.Path())
	if e.Finished || e.Step != flasher.StepTransfer || e.Acked != 5120 {
		t.Fatalf("journal after cancel: %+v", e)
	}
	b.wantOldImageConfirmed()
	b.dev.hook = nil
	o, err, _ = b.flash(context.Background())
	if err != nil || o.ResumedFrom != 5120 {
		t.Fatalf("resume: %+v, %v", o, err)
	}
	b.wantNewImageConfirmed()
}

func TestCancelDuringProbeNeverConfirms(t *testing.T) {
	b := newBench(t)
	ctx, cancel := context.WithCancel(context.Background())
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "reset" {
			b.dev.silent = true
			time.AfterFunc(50*time.Millisecond, cancel)
		}
		return nil
	}
	o, err, j := b.flash(ctx)
	if flasher.CodeOf(err) != flasher.CodeCancelled || o.Result != flasher.ResultInterrupted || b.dev.called("confirm") != 0 {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if e := readJournal(t, j.Path()); e.Step != flasher.StepProbe || e.Finished {
		t.Fatalf("journal %+v", e)
	}
}

// rewriteBundle changes payload bytes of the bundle file on disk at off, as someone with
// write access to the file (or a failing disk) would after it was verified.
func (b *bench) rewriteBundle(off int64, data []byte) {
	b.t.Helper()
	f, err := os.OpenFile(b.v.Bundle, os.O_RDWR, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, b.v.Targets[0].Offset+off); err != nil {
		b.t.Fatal(err)
	}
}

func TestFlashRefusesBundleModifiedAfterVerify(t *testing.T) {
	b := newBench(t)
	// The bundle changes between "verified" and the flash: the plan copies the payload and
	// checks the copy before anything is sent.
	b.rewriteBundle(4000, []byte{b.payload[4000] ^ 0x55})
	d := b.dev.connect()
	id, err := d.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.dev.calls = nil
	_, err = flasher.NewPlan(b.v, "", id, b.opt)
	if flasher.CodeOf(err) != flasher.CodeBundleChanged {
		t.Fatalf("NewPlan: %v; want the changed bundle refused", err)
	}
	if len(b.dev.calls) != 0 {
		t.Fatalf("device saw %v after a modified bundle", b.dev.calls)
	}
	for _, s := range []string{"changed after it was verified", "nothing was sent to the device", "verify it"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	b.wantOldImageConfirmed()
}

// A bundle rewritten while the transfer pauses for a retry cannot reach the device: every
// byte, resends included, comes from the copy verified when the plan was made.
func TestBundleRewrittenDuringARetryPauseNeverReachesTheDevice(t *testing.T) {
	b := newBench(t)
	evil := randomBytes(666, len(b.payload))
	faulted := false
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && acked >= 6144 && !faulted {
			faulted = true
			b.rewriteBundle(0, evil) // the whole payload, the part already sent included
			return errLinkDown
		}
		return nil
	}
	o, err, _ := b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultConfirmed || !faulted {
		t.Fatalf("outcome %+v, err %v (fault injected: %v)", o, err, faulted)
	}
	b.wantNewImageConfirmed() // the device knows only the verified image as 2.0.0
}

// A run that resumes after the app was stopped plans again, and so checks the bundle
// again before sending the rest.
func TestFlashRefusesBundleModifiedBeforeResume(t *testing.T) {
	b := newBench(t)
	ctx, cancel := context.WithCancel(context.Background())
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && acked == 6144 {
			cancel()
		}
		return nil
	}
	if _, err, _ := b.flash(ctx); flasher.CodeOf(err) != flasher.CodeCancelled {
		t.Fatal(err)
	}
	b.dev.hook = nil
	// The part already on the device is what changes.
	b.rewriteBundle(10, []byte{b.payload[10] ^ 1})
	d := b.dev.connect()
	id, err := d.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.dev.calls = nil
	if _, err := flasher.NewPlan(b.v, "", id, b.opt); flasher.CodeOf(err) != flasher.CodeBundleChanged {
		t.Fatalf("NewPlan: %v; want the changed bundle refused", err)
	}
	if len(b.dev.calls) != 0 {
		t.Fatalf("device saw %v after a modified bundle", b.dev.calls)
	}
}

func TestFlashSendsAgainFromStartWhenDeviceCopyDiffers(t *testing.T) {
	b := newBench(t)
	checks := 0
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "check" {
			checks++
		}
		if verb == "check" && checks == 1 {
			b.dev.secondary[100] ^= 0xff // a flash bit that did not stick
		}
		return nil
	}
	o, err, _ := b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if !slices.Equal(b.dev.writes, []int64{0, 0}) {
		t.Fatalf("writes from %v, want a second upload from 0", b.dev.writes)
	}
	b.wantNewImageConfirmed()
}

func TestFlashWithoutTrialBootInstallsAndProbes(t *testing.T) {
	// A classic bootloader (YMODEM-like): no resume, check, test or confirm; it copies
	// the image and starts it by itself; it reports its version per component.
	b := newBench(t)
	b.dev.caps = flasher.Capabilities{}
	b.dev.classic = true
	b.v.Targets[0].Meta.Protocol.Protocols = nil
	o, err, _ := b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultInstalled {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	want := []flasher.Step{flasher.StepPreflight, flasher.StepTransfer, flasher.StepReset, flasher.StepProbe}
	if got := b.stepsStarted(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if b.dev.called("activate")+b.dev.called("confirm")+b.dev.called("check") != 0 {
		t.Fatalf("device saw %v", b.dev.calls)
	}
	if o.Running != "2.0.0" {
		t.Fatalf("running %q", o.Running)
	}
}

func TestFlashStopsOnWrongDevice(t *testing.T) {
	b := newBench(t)
	p := b.plan()
	b.dev.hw = "acme-gw-r3" // the technician swapped devices between plan and run
	o, err := flasher.Run(context.Background(), p, b.dev.connect(), nil, nil)
	if flasher.CodeOf(err) != flasher.CodeWrongDevice || o.Result != flasher.ResultFailed || len(b.dev.writes) != 0 {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
}

func TestFlashRetriesStalledTransfer(t *testing.T) {
	b := newBench(t)
	// Long enough that a loaded machine never takes it for a stall between two honest
	// acknowledgements (50 ms once gave two retries), short enough to keep the test quick.
	b.opt.StallTimeout = 400 * time.Millisecond
	b.dev.hangAt = 3072
	o, err, _ := b.flash(context.Background())
	if err != nil || o.Result != flasher.ResultConfirmed || o.Retries != 1 {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if !slices.Equal(b.dev.writes, []int64{0, 3072}) {
		t.Fatalf("writes %v, want a resume at 3072", b.dev.writes)
	}
	if r := b.kinds(flasher.KindRetry); len(r) != 1 || !strings.Contains(r[0].Message, "acknowledged nothing for 400ms at byte 3072") {
		t.Fatalf("retry events %+v", r)
	}
}

func TestWrongDeviceLeavesOtherRunsJournalAlone(t *testing.T) {
	b := newBench(t)
	ctx, cancel := context.WithCancel(context.Background())
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "write-chunk" && acked == 4096 {
			cancel()
		}
		return nil
	}
	_, _, j := b.flash(ctx)
	b.dev.hook = nil
	p := b.plan()
	b.dev.hw = "acme-gw-r3"
	if _, err := flasher.Run(context.Background(), p, b.dev.connect(), b.journal(p), nil); flasher.CodeOf(err) != flasher.CodeWrongDevice {
		t.Fatal(err)
	}
	if e := readJournal(t, j.Path()); e.Finished || e.Step != flasher.StepTransfer || e.Acked != 4096 {
		t.Fatalf("journal after a refused run: %+v", e)
	}
	b.dev.hw = "acme-gw-r2"
	if o, err, _ := b.flash(context.Background()); err != nil || o.ResumedFrom != 4096 {
		t.Fatalf("resume after the right device is back: %+v, %v", o, err)
	}
}

func TestRefusedConfirmLeavesTrialBootToRevert(t *testing.T) {
	b := newBench(t)
	b.dev.hook = func(verb string, acked int64) error {
		if verb == "confirm" {
			return errors.New("device: rc 6 (no memory)")
		}
		return nil
	}
	o, err, j := b.flash(context.Background())
	if flasher.CodeOf(err) != flasher.CodeDevice || o.Result != flasher.ResultNotConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	if e := readJournal(t, j.Path()); e.Finished || e.Step != flasher.StepConfirm {
		t.Fatalf("journal %+v", e)
	}
	if h := b.kinds(flasher.KindHint); len(h) != 1 || !strings.Contains(h[0].Message, "not confirmed") {
		t.Fatalf("hints %+v", h)
	}
	b.dev.hook = nil
	if o, err, _ := b.flash(context.Background()); err != nil || o.Result != flasher.ResultConfirmed || o.Bytes != 0 {
		t.Fatalf("rerun: %+v, %v", o, err)
	}
	b.wantNewImageConfirmed()
}

// A device that refuses the transfer halfway is described by what is known: an application
// still runs its current image, a bootloader that writes as it receives may not.
func TestRefusedTransferSaysOnlyWhatIsKnownOfTheDevice(t *testing.T) {
	for _, recovery := range []bool{false, true} {
		b := newBench(t)
		b.dev.recovery = recovery
		b.opt.HardwareID = "acme-gw-r2"
		b.dev.hook = func(verb string, acked int64) error {
			if verb == "write-chunk" && acked >= 4096 {
				return errors.New("invalid value in the request (rc 3)")
			}
			return nil
		}
		_, err, _ := b.flash(context.Background())
		var fe *flasher.Error
		if !errors.As(err, &fe) || fe.Code != flasher.CodeDevice {
			t.Fatalf("recovery %v: %v; want the device's refusal", recovery, err)
		}
		claims := strings.Contains(fe.Next, "still runs its current image")
		if recovery == claims {
			t.Errorf("recovery %v: next step %q", recovery, fe.Next)
		}
	}
}
