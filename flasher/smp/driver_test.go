package smp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

func mcubootHash(t testing.TB, img *flasher.Image) []byte {
	t.Helper()
	m, err := mcuboot.Parse(img.Data, img.Size)
	if err != nil {
		t.Fatal(err)
	}
	return m.ImageHash
}

func slot(id *flasher.Identity, n int) flasher.Slot {
	for _, s := range id.Slots {
		if s.Slot == n {
			return s
		}
	}
	return flasher.Slot{Slot: -1}
}

func upload(t testing.TB, ctx context.Context, d *smp.Driver, img *flasher.Image) {
	t.Helper()
	from, err := d.ResumeOffset(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	last := int64(-1)
	acked, err := d.Write(ctx, img, from, func(a int64) {
		if a <= last {
			t.Errorf("progress went from %d to %d", last, a)
		}
		last = a
	})
	if err != nil || acked != img.Size {
		t.Fatalf("upload %s: acked %d of %d: %v", img.Name, acked, img.Size, err)
	}
}

// The whole field story over a real pseudo-terminal, in both console frame conventions:
// identify, upload, check, test, reset into the trial boot, confirm; then a second image
// that is tested and reverted.
func TestFlashTestConfirmAndRevertOverSerial(t *testing.T) {
	for _, frame := range []int{smp.Frame127, smp.Frame128} {
		t.Run(fmt.Sprint(frame), func(t *testing.T) {
			ctx := context.Background()
			b := newBench(t, benchOptions{factory: "ed25519-basic.bin", device: smpdev.Options{FrameSize: frame}})
			d := smp.New(b.open(t), smp.Options{FrameSize: frame, Timeout: time.Second})
			defer d.Close()

			id, err := d.Identify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if id.Mode != "application" || id.HardwareID != "acme-gw-r2" || id.Bootloader != "MCUboot" || id.BufferSize != smpdev.DefaultBufferSize {
				t.Fatalf("identity %+v", id)
			}
			if s := slot(id, 0); s.Version != "1.2.3.45" || !s.Active || !s.Confirmed {
				t.Fatalf("factory slot 0: %+v", s)
			}
			if id.Components["app"] != "1.2.3.45" || id.Components["image0"] != "1.2.3.45" {
				t.Fatalf("components %v: image 0 must be reported as the app", id.Components)
			}

			img := loadImage(t, "ecdsa-p256-basic.bin") // 70674 bytes, 2.0.0, counter 0x02000000
			upload(t, ctx, d, img)
			if err := d.Check(ctx, img); err != nil {
				t.Fatal(err)
			}
			if err := d.Activate(ctx, img); err != nil {
				t.Fatal(err)
			}
			if err := d.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if r := b.waitReset(t); r.Swap != flash.SwapTest || r.Mode != flash.ModeApplication {
				t.Fatalf("boot after reset: %+v", r)
			}
			id, err = d.Identify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s := slot(id, 0); !bytes.Equal(s.Hash, mcubootHash(t, img)) || !s.Active || s.Confirmed || s.Version != "2.0.0" {
				t.Fatalf("trial boot slot 0: %+v", s)
			}
			if err := d.Confirm(ctx, img); err != nil {
				t.Fatal(err)
			}
			id, _ = d.Identify(ctx)
			if s := slot(id, 0); !s.Confirmed {
				t.Fatalf("confirm did not stick: %+v", s)
			}

			// A second release, same security counter: test it, then revert.
			next := loadImage(t, "ecdsa-p256-pubkey-full.bin")
			upload(t, ctx, d, next)
			if err := d.Activate(ctx, next); err != nil {
				t.Fatal(err)
			}
			d.Reset(ctx)
			b.waitReset(t)
			if err := d.Revert(ctx); err != nil { // nothing to prepare: the reset goes back
				t.Fatal(err)
			}
			d.Reset(ctx)
			if r := b.waitReset(t); r.Swap != flash.SwapRevert {
				t.Fatalf("revert boot: %+v", r)
			}
			id, _ = d.Identify(ctx)
			if s := slot(id, 0); !bytes.Equal(s.Hash, mcubootHash(t, img)) || !s.Active || !s.Confirmed {
				t.Fatalf("after revert slot 0: %+v", s)
			}
		})
	}
}

func TestRevertCancelsATestNotBootedYet(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin"})
	d := smp.New(b.open(t), smp.Options{})
	defer d.Close()
	img := loadImage(t, "ecdsa-p256-pubkey-full.bin")
	upload(t, ctx, d, img)
	if err := d.Activate(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := d.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	d.Reset(ctx)
	if r := b.waitReset(t); r.Swap != flash.SwapNone {
		t.Fatalf("the cancelled test still swapped: %+v", r)
	}
}

// The cable is pulled at 90% of the upload; after replugging, the driver asks where the
// device stopped and sends the rest. At most one chunk is sent twice.
func TestUploadResumesAfterCablePull(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin"})
	img := loadImage(t, "ecdsa-p256-basic.bin")

	wire := smp.EncodedLen(smpdev.DefaultBufferSize-4, smp.Frame127) * int(img.Size) / (smpdev.DefaultBufferSize - 60)
	c := &cable{ReadWriter: b.open(t), after: wire * 9 / 10}
	d := smp.New(c, smp.Options{Timeout: 500 * time.Millisecond})
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	chunk := d.ChunkSize(img, 1)
	acked, err := d.Write(ctx, img, 0, nil)
	if err == nil || !flasher.IsTransient(err) {
		t.Fatalf("pulled cable: acked %d, err %v (transient %v)", acked, err, flasher.IsTransient(err))
	}
	d.Close()
	t.Logf("cable pulled with %d of %d bytes acknowledged: %v", acked, img.Size, err)

	d = smp.New(b.open(t), smp.Options{})
	defer d.Close()
	from, err := d.ResumeOffset(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if from < acked || from < img.Size*8/10 {
		t.Fatalf("device resumes at %d, driver had %d acknowledged", from, acked)
	}
	if n, err := d.Write(ctx, img, from, nil); err != nil || n != img.Size {
		t.Fatalf("resumed upload: %d, %v", n, err)
	}
	if err := d.Check(ctx, img); err != nil {
		t.Fatal(err)
	}
	resent := b.dev.Stats().UploadBytes - img.Size
	t.Logf("resumed at %d; bytes sent twice: %d (one chunk is %d)", from, resent, chunk)
	if resent > int64(chunk) {
		t.Fatalf("%d bytes sent twice, more than one %d-byte chunk", resent, chunk)
	}
}

// A device with nothing bootable stays in MCUboot serial recovery: it answers image list
// and upload (into the primary slot) and refuses os info and params as not supported.
func TestRecoveryModeFlashesThePrimarySlot(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{})
	d := smp.New(b.open(t), smp.Options{})
	defer d.Close()
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Mode != "recovery" || id.Bootloader != "MCUboot" || id.BufferSize != 512 || len(id.Slots) != 0 {
		t.Fatalf("recovery identity %+v", id)
	}
	img := loadImage(t, "ed25519-basic.bin")
	if from, err := d.ResumeOffset(ctx, img); err != nil || from != 0 {
		t.Fatalf("resume in recovery: %d %v", from, err)
	}
	upload(t, ctx, d, img)
	if err := d.Check(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := d.Activate(ctx, img); err != nil {
		t.Fatal(err)
	}
	d.Reset(ctx)
	if r := b.waitReset(t); r.Mode != flash.ModeApplication {
		t.Fatalf("after recovery upload: %+v", r)
	}
	id, err = d.Identify(ctx)
	if err != nil || id.Mode != "application" || !bytes.Equal(slot(id, 0).Hash, mcubootHash(t, img)) {
		t.Fatalf("%+v %v", id, err)
	}
}

// Refusals come back in the error form of the request's SMP version and name the command.
func TestRefusalsInBothErrorForms(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin"})
	unknown := make([]byte, 32)
	for _, tc := range []struct {
		version uint8
		want    string
	}{
		{smp.Version1, "image state refused: no such entry (rc 5)"},
		{smp.Version2, "image state refused: no image with that hash (group 1 rc 8); upload the image first"},
	} {
		d := smp.New(b.open(t), smp.Options{Version: tc.version})
		err := d.Request(ctx, smp.OpWrite, smp.GroupImage, smp.ImageState, smp.ImageStateWrite{Hash: unknown}, &smp.ImageStateResponse{})
		var de *smp.DeviceError
		if !errors.As(err, &de) || err.Error() != tc.want {
			t.Errorf("v%d: %v, want %q", tc.version+1, err, tc.want)
		}
		d.Close()
	}
	// Anti-rollback on upload: the "upgrade" flag refuses an image not newer than the running one.
	d := smp.New(b.open(t), smp.Options{Version: smp.Version2})
	defer d.Close()
	img := imageBytes(loadImage(t, "unsigned-hash-only.bin"))
	n, yes := uint64(len(img)), true
	err := d.Request(ctx, smp.OpWrite, smp.GroupImage, smp.ImageUpload, smp.UploadRequest{Len: &n, Data: img[:512], Upgrade: &yes}, &smp.UploadResponse{})
	if err == nil || err.Error() != "image upload refused: the running image is newer (group 1 rc 27); the device already runs a newer image; use a newer bundle" {
		t.Fatalf("downgrade with upgrade flag: %v", err)
	}
}

// A device that never answers is a transient link error after the retries, each resent
// with the same sequence number.
func TestSilentDeviceIsALinkError(t *testing.T) {
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin", device: smpdev.Options{BufferSize: 128}})
	d := smp.New(b.open(t), smp.Options{Timeout: 100 * time.Millisecond, Retries: 2})
	defer d.Close()
	// 200 bytes of echo do not fit a 128-byte buffer: the device drops it, as Zephyr does.
	_, err := d.Echo(context.Background(), string(make([]byte, 200)))
	if !flasher.IsTransient(err) {
		t.Fatalf("%v", err)
	}
	if got, err := d.Echo(context.Background(), "hi"); err != nil || got != "hi" {
		t.Fatalf("echo after drop: %q %v", got, err)
	}
}

func TestChunksFillTheDeviceBuffer(t *testing.T) {
	img := loadImage(t, "ecdsa-p256-basic.bin")
	for _, buf := range []int{256, 512, 1024, 2048, 4096} {
		b := newBench(t, benchOptions{factory: "ed25519-basic.bin", device: smpdev.Options{BufferSize: buf}})
		d := smp.New(b.open(t), smp.Options{})
		if _, err := d.Identify(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 1, 300, 70000} {
			n := d.ChunkSize(img, off)
			size := func(n int) int {
				req := smp.UploadRequest{Off: uint64(off), Data: make([]byte, n)}
				if off == 0 {
					l, i := uint64(img.Size), uint32(0)
					req.Len, req.Image, req.SHA = &l, &i, img.SHA256[:]
				}
				body, _ := smp.Marshal(req)
				return 2 + smp.HeaderSize + len(body) + 2
			}
			if size(n) > buf || size(n+1) <= buf {
				t.Errorf("buffer %d, off %d: chunk %d makes a %d-byte packet, %d bytes makes %d", buf, off, n, size(n), n+1, size(n+1))
			}
		}
		d.Close()
	}
}

// Line noise garbles chunks in the middle of an upload while more are on their way; the
// device drops the garbled ones and answers the next with the offset it still expects.
// The driver goes on from there and the image arrives whole.
func TestUploadRecoversFromLineNoise(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin"})
	n := &noise{ReadWriter: b.open(t), hit: map[int]bool{8: true, 15: true, 16: true, 30: true}}
	d := smp.New(n, smp.Options{Timeout: 300 * time.Millisecond})
	defer d.Close()
	img := loadImage(t, "ecdsa-p256-basic.bin")
	upload(t, ctx, d, img)
	if err := d.Check(ctx, img); err != nil {
		t.Fatal(err)
	}
	st := b.dev.Stats()
	t.Logf("%d chunks, %d data bytes for a %d-byte image", st.UploadChunks, st.UploadBytes, img.Size)
}

// The device rebooted between two sessions and forgot the upload: writing from where the
// journal says starts over at 0 instead of failing.
func TestWriteStartsOverWhenTheDeviceForgotTheUpload(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, benchOptions{factory: "ed25519-basic.bin"})
	d := smp.New(b.open(t), smp.Options{})
	defer d.Close()
	img := loadImage(t, "ecdsa-p256-basic.bin")
	if n, err := d.Write(ctx, img, 30000, nil); err != nil || n != img.Size {
		t.Fatalf("%d %v", n, err)
	}
	if err := d.Check(ctx, img); err != nil {
		t.Fatal(err)
	}
}
