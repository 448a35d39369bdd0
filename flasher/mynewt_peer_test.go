//go:build unix

package flasher_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
)

const mynewtPeer = "../testdata/peers/mynewt-smp"

// mynewtDevice is Apache Mynewt's SMP server under real MCUboot (testdata/peers/mynewt-smp,
// built from upstream, nobody here wrote it), as Linux processes on a pseudo-terminal:
// each reset runs the bootloader on the flash file, then the application.
type mynewtDevice struct {
	state, port string
}

func startMynewt(t *testing.T) *mynewtDevice {
	t.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("the Mynewt peer needs socat (apt-get install socat; make test installs it)")
	}
	state := t.TempDir()
	cmd := exec.Command("bash", "run.sh", ".", state, "--fresh")
	cmd.Dir = mynewtPeer
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("starting the Mynewt peer: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", "run.sh", "--stop", state)
		stop.Dir = mynewtPeer
		stop.Run()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(state, "fw.log")); err == nil {
				t.Logf("fw.log:\n%s", tail(string(log), 40))
			}
		}
	})
	return &mynewtDevice{state: state, port: filepath.Join(state, "smp.tty")}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// connect opens the peer's port as the app opens a serial adapter and starts the driver
// with its defaults.
func (m *mynewtDevice) connect(ctx context.Context) (flasher.Driver, error) {
	var p serial.Port
	var err error
	for i := 0; i < 50; i++ { // the link appears once socat runs
		if p, err = serial.Open(m.port, &serial.Mode{BaudRate: 115200}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		p.Close()
		return nil, err
	}
	return smp.New(p, smp.Options{}), nil
}

// bootLog is what the bootloader printed at each boot.
func (m *mynewtDevice) bootLog() string {
	b, _ := os.ReadFile(filepath.Join(m.state, "fw.log"))
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), "boot") {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestMynewtPeerUpdateRevertAndConfirm flashes the Mynewt peer through the engine with the
// driver's defaults, as `fieldflash flash` does: first with a health check that fails (the
// engine must not confirm, and MCUboot must bring 1.0.0 back at the reset), then for good
// (upload, test, reset, probe, confirm: 2.0.0 confirmed).
func TestMynewtPeerUpdateRevertAndConfirm(t *testing.T) {
	if testing.Short() {
		t.Skip("the Mynewt peer uploads 250 KiB at the speed of its console: minutes")
	}
	dev := startMynewt(t)
	v, _ := smpBundle(t, t.TempDir(), "../peers/mynewt-smp/smp_native-2.0.0.img", "2.0.0")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run := func(health func(context.Context, *flasher.Identity) error) (*flasher.Outcome, error) {
		d, err := dev.connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, err := d.Identify(ctx)
		if err != nil {
			t.Fatalf("identify: %v", err)
		}
		if id.HardwareID != "" {
			v.Targets[0].Meta.HardwareIDs = []string{id.HardwareID}
		}
		p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{Port: dev.port, HardwareID: v.Targets[0].Meta.HardwareIDs[0],
			Device: "mynewt-native/1", Reconnect: dev.connect, Health: health})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		j, err := flasher.OpenJournal(t.TempDir(), p.JournalKey())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		o, err := flasher.Run(ctx, p, d, j, func(e flasher.Event) {
			if e.Kind == flasher.KindStepDone {
				t.Logf("%6.1fs %s: %s", time.Since(start).Seconds(), e.Step, e.Message)
			}
		})
		return o, err
	}
	o, err := run(func(context.Context, *flasher.Identity) error { return errors.New("the self-test failed") })
	if err == nil || o.Result != flasher.ResultReverted {
		t.Fatalf("with a failing health check: %+v, %v; want reverted\n%s", o, err, dev.bootLog())
	}
	if o.Bytes > 0 {
		t.Logf("upload: %d bytes in %s", o.Bytes, o.Duration)
	}
	if o.Running != "1.0.0" {
		t.Fatalf("after the revert the engine reports %q running; want 1.0.0 seen", o.Running)
	}
	checkRunning(t, dev, "1.0.0", true)

	o, err = run(nil)
	if err != nil || o.Result != flasher.ResultConfirmed || o.Running != "2.0.0" {
		t.Fatalf("the update: %+v, %v\n%s", o, err, dev.bootLog())
	}
	checkRunning(t, dev, "2.0.0", true)
}

func checkRunning(t *testing.T, dev *mynewtDevice, version string, confirmed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var id *flasher.Identity
	var err error
	for ctx.Err() == nil { // the device may be between two boots: ask until it answers
		d, cerr := dev.connect(ctx)
		if cerr != nil {
			t.Fatal(cerr)
		}
		id, err = d.Identify(ctx)
		d.Close()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("identify: %v", err)
	}
	for _, s := range id.Slots {
		if s.Slot == 0 && s.Active {
			if s.Version != version || s.Confirmed != confirmed {
				t.Fatalf("slot 0 runs %s (confirmed %v); want %s (confirmed %v); slots %+v", s.Version, s.Confirmed, version, confirmed, id.Slots)
			}
			return
		}
	}
	t.Fatalf("no active slot 0: %+v", id.Slots)
}

// TestBenchMynewtPeer uploads smp_native-2.0.0.img to the Mynewt peer twice from a fresh
// flash, with the driver as it ships and in its stop-and-wait mode (as mcumgr's Go
// command line sends), and prints both rates and their ratio. Run with FIELDFLASH_BENCH=1
// (make bench).
func TestBenchMynewtPeer(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("a benchmark: set FIELDFLASH_BENCH=1 (make bench) to run it")
	}
	b, err := os.ReadFile(mynewtPeer + "/smp_native-2.0.0.img")
	if err != nil {
		t.Fatal(err)
	}
	var rates [2]float64
	for i, stopAndWait := range []bool{false, true} {
		dev := startMynewt(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var p serial.Port
		for range 50 {
			if p, err = serial.Open(dev.port, &serial.Mode{BaudRate: 115200}); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		p.SetReadTimeout(20 * time.Millisecond)
		d := smp.New(p, smp.Options{StopAndWait: stopAndWait})
		if _, err := d.Identify(ctx); err != nil {
			t.Fatal(err)
		}
		img := &flasher.Image{Name: "smp_native-2.0.0.img", Size: int64(len(b)), SHA256: sha256.Sum256(b), Data: bytes.NewReader(b)}
		start := time.Now()
		from, err := d.ResumeOffset(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.Write(ctx, img, from, nil); err != nil || n != img.Size {
			t.Fatalf("upload: %d of %d, %v", n, img.Size, err)
		}
		rates[i] = float64(img.Size) / time.Since(start).Seconds() / 1000
		t.Logf("stop-and-wait %v: buffer %d bytes, %.2f KB/s", stopAndWait, d.BufferSize(), rates[i])
		d.Close()
		cancel()
	}
	fmt.Printf("BENCH smp_mynewt_peer_fieldflash %.2f KB/s\n", rates[0])
	fmt.Printf("BENCH smp_mynewt_peer_stop_and_wait %.2f KB/s\n", rates[1])
	fmt.Printf("BENCH smp_mynewt_peer_vs_stop_and_wait %.3f ratio\n", rates[0]/rates[1])
}
