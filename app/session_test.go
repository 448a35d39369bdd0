//go:build unix

package app

// These tests drive the app layer as a face does, with no UI: real virtual devices on
// real pseudo-terminals, the real demo bundle, the real engine and journals.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoSession opens a demo-mode session in a fresh $FIELDFLASH_HOME and verifies the
// demo bundle through it.
func demoSession(t *testing.T) (*Session, *Verified) {
	t.Helper()
	home := t.TempDir()
	t.Setenv(HomeEnv, home)
	s, err := OpenSession(true)
	if err != nil {
		t.Fatal(err)
	}
	path, err := DemoBundlePath(home)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(path, VerifyOptions{})
	if err != nil {
		t.Fatalf("the demo bundle does not verify in demo mode: %v", err)
	}
	return s, v
}

func startVirtual(t *testing.T, cfg VirtualConfig) *VirtualDevice {
	t.Helper()
	if cfg.State == "" {
		cfg.State = filepath.Join(t.TempDir(), cfg.Protocol+".flash")
	}
	if cfg.Symlink == "" {
		// A stable path, as a udev rule gives a real adapter: after a pulled cable the new
		// pty may get another number, and the old /dev/pts/N may by then belong to another
		// process (a test running beside this one), which the host would then talk to.
		cfg.Symlink = filepath.Join(t.TempDir(), "tty"+cfg.Protocol)
	}
	d, err := StartVirtualDevice(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// events collects a session's events from any goroutine.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) kinds(port string) []Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Kind
	for _, ev := range e.all {
		if ev.Port == port && !slices.Contains(out, ev.Kind) {
			out = append(out, ev.Kind)
		}
	}
	return out
}

func TestTwoDevicesAtOnceOneFitsAndOneIsRefused(t *testing.T) {
	s, v := demoSession(t)
	good := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0})
	wrong := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0, Hardware: "acme-gw-r2"})
	var evs events
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := s.FlashAll(ctx, []FlashRequest{
		{Bundle: v, Port: good.Path()},
		{Bundle: v, Port: wrong.Path()},
	}, evs.add)
	if res[0].Status != StatusOK || res[0].Outcome.Result != ResultConfirmed || good.Running() != "1.1.0" {
		t.Fatalf("the fitting device: status %d, %+v, runs %s; want confirmed 1.1.0", res[0].Status, res[0].Err, good.Running())
	}
	if res[1].Status != StatusRefused || ErrorCode(res[1].Err) != "hardware" || wrong.Running() != "1.0.0" {
		t.Fatalf("the wrong device: status %d, %v, runs %s; want refused for its hardware and untouched", res[1].Status, res[1].Err, wrong.Running())
	}
	// Each device's events carry its port, in the order of the story.
	want := []Kind{KindBegin, KindIdentified, KindPlanned, KindStepStart}
	if got := evs.kinds(good.Path()); len(got) < len(want) || !slices.Equal(got[:len(want)], want) || !slices.Contains(got, KindOutcome) {
		t.Errorf("events of the fitting device: %v", got)
	}
	if got := evs.kinds(wrong.Path()); slices.Contains(got, KindPlanned) || !slices.Contains(got, KindIdentified) {
		t.Errorf("events of the refused device: %v; want identified and never planned", got)
	}
}

func TestPulledCableMidTransferIsWaitedForAndResumed(t *testing.T) {
	s, v := demoSession(t)
	dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 115200})
	var evs events
	pulled := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := s.Flash(ctx, FlashRequest{Bundle: v, Port: dev.Path(), Protocol: "smp",
		Retry: RetryPolicy{Initial: 200 * time.Millisecond, Max: time.Second}}, func(ev Event) {
		evs.add(ev)
		if ev.Kind == KindProgress && ev.Bytes >= 16<<10 {
			once.Do(func() {
				// As the GUI's demo button does: out for a second, then back in.
				dev.PullCable(time.Second)
				close(pulled)
			})
		}
	})
	select {
	case <-pulled:
	default:
		t.Fatal("the transfer never reached 16 KiB")
	}
	if res.Status != StatusOK || res.Outcome.Result != ResultConfirmed || dev.Running() != "1.1.0" {
		t.Fatalf("status %d, %v; want confirmed after the pull", res.Status, res.Err)
	}
	if len(res.Resumes) < 2 || res.Resumes[len(res.Resumes)-1] < 16<<10-4096 {
		t.Fatalf("resume offsets %v; want a second transfer start near where the cable was pulled", res.Resumes)
	}
	kinds := evs.kinds(dev.Path())
	if !slices.Contains(kinds, KindRetry) || !slices.Contains(kinds, KindNote) {
		t.Errorf("events %v: want a retry while the cable was out and a note when the device came back", kinds)
	}
	if st := dev.Stats(); st.Disconnects != 1 {
		t.Errorf("disconnects %d, want 1", st.Disconnects)
	}
}

func TestWatchDevicesSeesAVirtualDeviceComeAndGo(t *testing.T) {
	t.Setenv(HomeEnv, t.TempDir())
	lists := make(chan []Port, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go WatchDevices(ctx, 100*time.Millisecond, func(p []Port, err error) {
		if err == nil {
			lists <- p
		}
	})
	has := func(p []Port, path string) bool {
		return slices.ContainsFunc(p, func(x Port) bool { return x.Path == path && x.Virtual })
	}
	wait := func(what string, ok func([]Port) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case p := <-lists:
				if ok(p) {
					return
				}
			case <-deadline:
				t.Fatalf("the watch never saw %s", what)
			}
		}
	}
	<-lists // the first list, whatever it holds
	dev := startVirtual(t, VirtualConfig{Protocol: "ymodem", State: filepath.Join(t.TempDir(), "ym")})
	withdraw, err := dev.Announce(AnnounceName("ymodem"))
	if err != nil {
		t.Fatal(err)
	}
	wait("the device appear", func(p []Port) bool { return has(p, dev.Path()) })
	withdraw()
	wait("the device go away", func(p []Port) bool { return !has(p, dev.Path()) })
}

func TestRecoveryFindsSerialRecoveryAndBringsTheDeviceBack(t *testing.T) {
	s, v := demoSession(t)
	dev := startVirtual(t, VirtualConfig{Protocol: "smp", Baud: 0, Recovery: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec, err := ProbeRecovery(ctx, dev.Path(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateSerialRecovery || rec.Identity.HardwareID != "" {
		t.Fatalf("state %q (%s); want MCUboot serial recovery, which does not say its hardware", rec.State, rec.Text)
	}
	res := s.Recover(ctx, rec, FlashRequest{Bundle: v}, nil)
	if res.Status != StatusRefused || !containsAll(res.Err.Error(), "label", SimHardwareSMP) {
		t.Fatalf("without a hardware id: %d %v; want a refusal naming the label and the bundle's hardware", res.Status, res.Err)
	}
	res = s.Recover(ctx, rec, FlashRequest{Bundle: v, Hardware: SimHardwareSMP}, nil)
	if res.Status != StatusOK || dev.Running() != "1.1.0" {
		t.Fatalf("recovery: %d %v, runs %s", res.Status, res.Err, dev.Running())
	}
	rec, err = ProbeRecovery(ctx, dev.Path(), 0, "")
	if err != nil || rec.State != StateApplication {
		t.Fatalf("after recovery: %v %+v; want the application answering", err, rec)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
