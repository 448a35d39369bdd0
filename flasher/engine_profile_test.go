package flasher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
)

// The engine's never-brick promise checked against each device profile's own rules
// (sim/smpdev, docs/devices.md): an image that boots but fails its health check is never
// confirmed, and the device ends on its previous image, confirmed.
func TestUnhealthyImageIsRevertedOnEveryProfile(t *testing.T) {
	for _, prof := range []smpdev.Profile{smpdev.ProfileZephyr, smpdev.ProfileZephyrTuned} {
		t.Run(prof.Name, func(t *testing.T) {
			prof := prof
			// The nRF52840's erase, program, boot and swap times, but not its UART's lost
			// bytes: this pseudo-terminal is not paced to a baud rate, and the receiver
			// judges lost bytes by line rate (the paced cable's tests in app/ and the bench
			// in sim/campaign have them).
			part := flash.PartNRF52840
			part.DropsWhileBusy = false
			f := newSMPFieldWith(t, 0, smpdev.Options{Profile: &prof, Part: part})
			v, _ := smpBundle(t, t.TempDir(), "ecdsa-p256-basic.bin", "2.0.0")
			d, err := f.connect(nil)
			if err != nil {
				t.Fatal(err)
			}
			id, err := d.Identify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			before := f.dev.FlashImage(flash.Primary).Hash
			p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{
				Port: f.port, HardwareID: "acme-gw-r2", Device: "acme-gw-r2/SN0042",
				Reconnect: func(ctx context.Context) (flasher.Driver, error) { return f.connect(nil) },
				Health: func(ctx context.Context, id *flasher.Identity) error {
					return errors.New("the application's self-test failed")
				},
				Retry: flasher.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			j, err := flasher.OpenJournal(t.TempDir(), p.JournalKey())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			o, err := flasher.Run(context.Background(), p, d, j, func(e flasher.Event) {
				if e.Kind != flasher.KindProgress {
					t.Logf("%6.2fs %s %s %s", time.Since(start).Seconds(), e.Step, e.Kind, e.Message)
				}
			})
			if err == nil || o.Result != flasher.ResultReverted {
				t.Fatalf("outcome %+v, %v; want reverted", o, err)
			}
			// MCUboot swaps the previous image back at the reset the revert made; wait
			// for the device to have booted it.
			deadline := time.Now().Add(10 * time.Second)
			for f.dev.LastBoot().Swap != flash.SwapRevert && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			f.wantRunning(t, before)
		})
	}
}

// TestRevertOfAPendingTestOnStockZephyrSaysWhatHappens: stock Zephyr refuses to erase a
// slot pending for test (CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING is off), so the test
// cannot be cancelled before it boots; Revert says so, and two resets without a confirm
// bring the previous image back, as the error tells.
func TestRevertOfAPendingTestOnStockZephyrSaysWhatHappens(t *testing.T) {
	prof := smpdev.ProfileZephyr
	f := newSMPFieldWith(t, 0, smpdev.Options{Profile: &prof})
	b, err := os.ReadFile(mcubootVectors + "ecdsa-p256-basic.bin")
	if err != nil {
		t.Fatal(err)
	}
	img := &flasher.Image{Name: "ecdsa-p256-basic.bin", Size: int64(len(b)), SHA256: sha256.Sum256(b), Data: bytes.NewReader(b)}
	before := f.dev.FlashImage(flash.Primary).Hash
	ctx := context.Background()
	d, err := f.connect(nil)
	if err != nil {
		t.Fatal(err)
	}
	sd := d.(*smp.Driver)
	if off, err := sd.ResumeOffset(ctx, img); err != nil || off != 0 {
		t.Fatalf("resume probe: %d %v", off, err)
	}
	if n, err := sd.Write(ctx, img, 0, nil); err != nil || n != img.Size {
		t.Fatalf("upload: %d %v", n, err)
	}
	if err := sd.Activate(ctx, img); err != nil {
		t.Fatal(err)
	}
	err = sd.Revert(ctx)
	var pe *smp.RevertPendingError
	if !errors.As(err, &pe) || pe.Err.RC != smp.ErrBadState {
		t.Fatalf("revert of a pending test: %v; want the refusal explained", err)
	}
	for range 2 {
		if err := sd.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.Close()
	f.wantRunning(t, before)
}
