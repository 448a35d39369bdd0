package dfu_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/dfudev"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/dfufile"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// These tests flash sim/dfudev twins through the in-process host of that package: the
// real DFU requests and state machines, below the USB boundary that the lab
// (sim/usblab) crosses for real through a Linux gadget, libusb and gousb.

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed ^ byte(i>>7)
	}
	return b
}

// bundle writes payload into a bundle-like file (between other bytes) and returns the
// verdict verify would give for a target with these hints.
func bundle(t *testing.T, payload []byte, meta verify.TargetMeta) *verify.Verified {
	t.Helper()
	head := bytes.Repeat([]byte("metadata"), 40)
	path := filepath.Join(t.TempDir(), "acme.fwb")
	if err := os.WriteFile(path, append(append(head, payload...), head...), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if meta.Version == "" {
		meta.Version = "2.0.0"
	}
	meta.HardwareIDs = []string{"acme-dfu"}
	meta.Component = "app"
	meta.Protocol.Protocols = []string{"dfu"}
	return &verify.Verified{Bundle: path, Targets: []verify.Target{{
		Path: "app.bin", Length: int64(len(payload)), SHA256: hex.EncodeToString(sum[:]), Offset: int64(len(head)), Meta: meta,
	}}}
}

type field struct {
	dev  *dfudev.Device
	host *dfudev.Host
}

func newField(t *testing.T, opt dfudev.Options) *field {
	t.Helper()
	dev, err := dfudev.New(filepath.Join(t.TempDir(), "flash.bin"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return &field{dev: dev, host: dfudev.NewHost(dev)}
}

func (f *field) driver(t *testing.T, ctx context.Context) flasher.Driver {
	c, err := f.host.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dfu.New(c, dfu.Options{Reopen: f.host.Open})
}

func (f *field) flash(t *testing.T, v *verify.Verified, j *flasher.Journal) (*flasher.Outcome, []flasher.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return f.flashCtx(t, ctx, v, j)
}

func (f *field) flashCtx(t *testing.T, ctx context.Context, v *verify.Verified, j *flasher.Journal) (*flasher.Outcome, []flasher.Event, error) {
	t.Helper()
	d := f.driver(t, ctx)
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{HardwareID: "acme-dfu", Device: "acme-dfu/sim", Port: "usb sim",
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			c, err := f.host.Open(ctx)
			if err != nil {
				return nil, err
			}
			return dfu.New(c, dfu.Options{Reopen: f.host.Open}), nil
		},
		DepartWait: 300 * time.Millisecond,
		Retry:      flasher.RetryPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var events []flasher.Event
	out, err := flasher.Run(ctx, p, d, j, func(e flasher.Event) { events = append(events, e) })
	return out, events, err
}

func messages(ev []flasher.Event) string {
	var s []string
	for _, e := range ev {
		if e.Message != "" {
			s = append(s, string(e.Step)+": "+e.Message)
		}
	}
	return strings.Join(s, "\n")
}

func mcubootImage(t *testing.T, n int, version string) []byte {
	t.Helper()
	v, err := mcuboot.ParseVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mcuboot.Build(pattern(n, 0x5a), mcuboot.BuildOptions{Version: v})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestZephyrApplicationDetachesTakesTheImageAndReboots(t *testing.T) {
	// The application runs 1.0.0 in run-time mode.
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, Reboot: true, Permanent: true, Initial: mcubootImage(t, 9000, "1.0.0")})
	img := mcubootImage(t, 20000, "2.0.0")
	out, ev, err := f.flash(t, bundle(t, img, verify.TargetMeta{Format: "mcuboot", Protocol: verify.ProtocolHints{DFUAlt: ptr(1)}}), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, messages(ev))
	}
	if out.Result != flasher.ResultInstalled {
		t.Fatalf("result %s", out.Result)
	}
	if st := f.dev.Stats(); st.Detaches != 1 || st.DataBytes != int64(len(img)) {
		t.Errorf("device saw %+v", st)
	}
	info := f.dev.Flash().Image(flash.Primary)
	if !info.Valid || info.VersionString() != "2.0.0" {
		t.Fatalf("primary after the reboot: %+v", info)
	}
	// Not manifestation tolerant (CONFIG_USB_DFU_REBOOT): no read-back after the
	// download, and the engine says it relied on the device.
	if m := messages(ev); !strings.Contains(m, "relying on the device's own check") {
		t.Errorf("no word on how the image was checked:\n%s", m)
	}
}

func TestZephyrToleranteDeviceIsReadBackAfterTheDownload(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, StartInDFU: true})
	img := mcubootImage(t, 30000, "2.0.0")
	out, ev, err := f.flash(t, bundle(t, img, verify.TargetMeta{Format: "mcuboot", Protocol: verify.ProtocolHints{DFUAlt: ptr(1)}}), nil)
	if err != nil || out.Result != flasher.ResultInstalled {
		t.Fatalf("%v %v\n%s", out.Result, err, messages(ev))
	}
	if m := messages(ev); !strings.Contains(m, "read back all 30") {
		t.Errorf("no read-back report:\n%s", m)
	}
	got := make([]byte, len(img))
	f.dev.Flash().Slot(flash.Secondary).ReadAt(got, 0)
	if !bytes.Equal(got, img) {
		t.Fatal("slot 1 does not hold the image")
	}
}

func TestZephyrRefusesTheRunningSlotWithErrWrite(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileZephyr, StartInDFU: true})
	_, ev, err := f.flash(t, bundle(t, mcubootImage(t, 3000, "2.0.0"), verify.TargetMeta{Protocol: verify.ProtocolHints{DFUAlt: ptr(0)}}), nil)
	if err == nil || !strings.Contains(err.Error(), "errWRITE") || !strings.Contains(err.Error(), "dfu_alt") {
		t.Fatalf("%v\n%s", err, messages(ev))
	}
}

func TestStalledBlockIsClearedAndThePlainDownloadStartsAgain(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, StartInDFU: true, StallBlock: 7})
	img := mcubootImage(t, 12000, "2.0.0")
	out, ev, err := f.flash(t, bundle(t, img, verify.TargetMeta{Protocol: verify.ProtocolHints{DFUAlt: ptr(1)}}), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, messages(ev))
	}
	if st := f.dev.Stats(); st.ClrStatus < 1 || out.Retries < 1 {
		t.Errorf("device %+v, retries %d", st, out.Retries)
	}
	if m := messages(ev); !strings.Contains(m, "CLRSTATUS") || !strings.Contains(m, "starts again from byte 0") {
		t.Errorf("stall not reported:\n%s", m)
	}
}

// dfuseFile is a DfuSe file for the STM32 twin: two elements in two sectors.
func dfuseFile(t *testing.T) ([]byte, [][]byte) {
	e0, e1 := pattern(40000, 1), pattern(9000, 2)
	b, err := dfufile.BuildDfuSe([]dfufile.TargetImage{{Alt: 0, Blocks: []dfufile.Block{{Address: 0x08000000, Data: e0}, {Address: 0x08010000, Data: e1}}}},
		dfufile.Suffix{IDVendor: 0x0483, IDProduct: 0xdf11})
	if err != nil {
		t.Fatal(err)
	}
	return b, [][]byte{e0, e1}
}

func TestDfuSeErasesOnlyTheCoveredPagesWritesEachElementAndLeaves(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileSTM32})
	// Something the image does not cover must survive: the last 128 KiB sector.
	file, els := dfuseFile(t)
	out, ev, err := f.flash(t, bundle(t, file, verify.TargetMeta{Format: "dfuse", Protocol: verify.ProtocolHints{DFUAlt: ptr(0)}}), nil)
	if err != nil || out.Result != flasher.ResultInstalled {
		t.Fatalf("%v %v\n%s", out.Result, err, messages(ev))
	}
	for i, a := range []uint32{0x08000000, 0x08010000} {
		got, _ := f.dev.Memory(a, len(els[i]))
		if !bytes.Equal(got, els[i]) {
			t.Errorf("element %d at 0x%08x differs", i, a)
		}
	}
	// 40000 bytes cover three 16 KiB sectors, 9000 one 64 KiB sector.
	if st := f.dev.Stats(); st.Erases != 4 {
		t.Errorf("%d sectors erased, want 4", st.Erases)
	}
	if !f.dev.Left() {
		t.Error("the device did not leave DFU mode")
	}
	if m := messages(ev); !strings.Contains(m, "read back all 49000 bytes") || !strings.Contains(m, "left dfu mode") {
		t.Errorf("events:\n%s", m)
	}
}

func TestDfuSeResumesFromTheFirstPageNotYetWritten(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileSTM32})
	file, _ := dfuseFile(t)
	f.host.UnplugAfter(30000)
	go func() {
		for f.host.Present() {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		f.host.Replug()
	}()
	out, ev, err := f.flash(t, bundle(t, file, verify.TargetMeta{Format: "dfuse"}), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, messages(ev))
	}
	st := f.dev.Stats()
	// About 30000 bytes went out before the pull. The first 16 KiB sector holds its part
	// whole and is neither erased nor written again; the download resumes at 16384.
	if resent := st.DataBytes - 49000; resent < 0 || resent > 30000-16384 {
		t.Errorf("device took %d data bytes for a 49000-byte image after a pull at 30000 (%d sent twice)", st.DataBytes, resent)
	}
	if st.Erases != 4+3 {
		t.Errorf("%d sector erases, want 4 and then the 3 from 16384 on", st.Erases)
	}
	if out.Retries < 1 {
		t.Errorf("no retry after the pull")
	}
	_ = ev
}

func TestDfuSeFileForAnotherDeviceIsRefused(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileSTM32})
	file, err := dfufile.BuildDfuSe([]dfufile.TargetImage{{Blocks: []dfufile.Block{{Address: 0x08000000, Data: pattern(100, 0)}}}}, dfufile.Suffix{IDVendor: 0x1209, IDProduct: 0x0001})
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := f.flash(t, bundle(t, file, verify.TargetMeta{Format: "dfuse"}), nil)
	if err == nil || !strings.Contains(err.Error(), "1209:0001") || !strings.Contains(err.Error(), "0483:df11") {
		t.Fatalf("%v\n%s", err, messages(ev))
	}
	if f.dev.Stats().Erases != 0 {
		t.Error("the device was erased for a file it does not take")
	}
}

func TestDfuSeRawImageOutsideTheLayoutIsRefused(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileSTM32})
	addr := uint64(0x080ff000)
	_, _, err := f.flash(t, bundle(t, pattern(8192, 3), verify.TargetMeta{Protocol: verify.ProtocolHints{Address: &addr}}), nil)
	if err == nil || !strings.Contains(err.Error(), "0x08100000") {
		t.Fatal(err)
	}
}

func TestPlainDFUStartsAgainAfterAPulledCableAndSaysSo(t *testing.T) {
	f := newField(t, dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, StartInDFU: true})
	img := mcubootImage(t, 20000, "2.0.0")
	v := bundle(t, img, verify.TargetMeta{Protocol: verify.ProtocolHints{DFUAlt: ptr(1)}})
	j, err := flasher.OpenJournal(t.TempDir(), flasher.JournalKey{Device: "acme-dfu/sim", ImageSHA256: v.Targets[0].SHA256})
	if err != nil {
		t.Fatal(err)
	}
	// First run: the cable goes at 8 KiB and stays out; the run gives up.
	f.host.UnplugAfter(8192)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	go func() { <-ctx.Done() }()
	out, _, err := f.flashCtx(t, ctx, v, j)
	cancel()
	if err == nil || out.Result != flasher.ResultInterrupted {
		t.Fatalf("first run: %v %v", out.Result, err)
	}
	f.host.Replug()
	out, ev, err := f.flash(t, v, j)
	if err != nil || out.Result != flasher.ResultInstalled || out.ResumedFrom != 0 {
		t.Fatalf("second run: %+v %v\n%s", out, err, messages(ev))
	}
	if m := messages(ev); !strings.Contains(m, "cannot resume") {
		t.Errorf("the restart is not said plainly:\n%s", m)
	}
}

func ptr[T any](v T) *T { return &v }
