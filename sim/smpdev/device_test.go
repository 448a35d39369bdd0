package smpdev_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
)

var layout = flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}

func call(t *testing.T, d *smpdev.Device, op smp.Op, group uint16, id uint8, req, resp any) {
	t.Helper()
	body, err := smp.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, after := d.Handle(smp.BuildMessage(smp.Header{Op: op, Group: group, ID: id, Seq: 1}, body))
	if out == nil {
		t.Fatal("no answer")
	}
	h, rbody, err := smp.ParseMessage(out)
	if err != nil || h.Op != op+1 {
		t.Fatalf("answer %+v %v", h, err)
	}
	if err := smp.Unmarshal(rbody, resp); err != nil {
		t.Fatal(err)
	}
	if after != nil {
		after()
	}
}

func chunk(t *testing.T, d *smpdev.Device, img []byte, off, n int, sha []byte) uint64 {
	t.Helper()
	req := smp.UploadRequest{Off: uint64(off), Data: img[off : off+n]}
	if off == 0 {
		l := uint64(len(img))
		req.Len, req.SHA = &l, sha
	}
	var resp smp.UploadResponse
	call(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, req, &resp)
	if err := resp.AsError(smp.GroupImage, smp.ImageUpload); err != nil || resp.Off == nil {
		t.Fatalf("upload at %d: %v", off, err)
	}
	return *resp.Off
}

// Zephyr's resume rule: the first-chunk form with the same sha continues where the upload
// stopped; another sha starts over. A reboot (or a restarted simulator process) forgets the
// upload in progress but not the flash.
func TestUploadResumesOnlyTheSameImageAndOnlyUntilReboot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.flash")
	fl, err := flash.Create(path, layout, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile("../../testdata/mcuboot/ecdsa-p256-basic.bin")
	if err != nil {
		t.Fatal(err)
	}
	d, err := smpdev.New(fl, smpdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode() != flash.ModeRecovery {
		t.Fatalf("empty flash runs %s", d.Mode())
	}
	// Recovery writes the primary slot and knows no resume.
	sha := bytes.Repeat([]byte{1}, 32)
	if off := chunk(t, d, img, 0, 1000, sha); off != 1000 {
		t.Fatalf("off %d", off)
	}
	if off := chunk(t, d, img, 0, 0, sha); off != 0 {
		t.Fatalf("recovery resumed at %d", off)
	}
	for off := 0; off < len(img); {
		off = int(chunk(t, d, img, off, min(1500, len(img)-off), sha))
	}
	if _, err := d.Reboot(); err != nil || d.Mode() != flash.ModeApplication {
		t.Fatalf("after recovery upload: %s %v (%s)", d.Mode(), err, d.LastBoot().Refused)
	}

	// The application takes uploads into slot 1 and resumes them by sha.
	if off := chunk(t, d, img, 0, 1000, sha); off != 1000 {
		t.Fatalf("off %d", off)
	}
	if off := chunk(t, d, img, 1000, 1000, sha); off != 2000 {
		t.Fatalf("off %d", off)
	}
	if off := chunk(t, d, img, 0, 0, sha); off != 2000 {
		t.Fatalf("same sha resumed at %d, want 2000", off)
	}
	if off := chunk(t, d, img, 3000, 10, sha); off != 2000 {
		t.Fatalf("a chunk out of order moved the offset to %d", off)
	}
	other := bytes.Repeat([]byte{2}, 32)
	if off := chunk(t, d, img, 0, 0, other); off != 0 {
		t.Fatalf("another sha resumed at %d", off)
	}
	chunk(t, d, img, 0, 500, sha)

	fl.Close() // the simulator process ends; the device's flash stays
	fl, err = flash.Open(path, flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	d, err = smpdev.New(fl, smpdev.Options{})
	if err != nil || d.Mode() != flash.ModeApplication {
		t.Fatalf("restarted device: %v", err)
	}
	if off := chunk(t, d, img, 0, 0, sha); off != 0 {
		t.Fatalf("upload survived a reboot: %d", off)
	}
	var st smp.ImageStateResponse
	call(t, d, smp.OpRead, smp.GroupImage, smp.ImageState, struct{}{}, &st)
	if len(st.Images) != 1 || st.Images[0].Version != "2.0.0" || !st.Images[0].Active || !st.Images[0].Confirmed {
		t.Fatalf("image state after restart: %+v", st.Images)
	}
}

func TestRecoveryRefusesWhatMCUbootDoesNotImplement(t *testing.T) {
	fl, err := flash.Create(filepath.Join(t.TempDir(), "dev.flash"), layout, nil, flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	d, _ := smpdev.New(fl, smpdev.Options{})
	for _, c := range []struct {
		op    smp.Op
		group uint16
		id    uint8
	}{
		{smp.OpRead, smp.GroupOS, smp.OSInfo},
		{smp.OpRead, smp.GroupOS, smp.OSParams},
		{smp.OpWrite, smp.GroupImage, smp.ImageState},
		{smp.OpWrite, smp.GroupImage, smp.ImageErase},
	} {
		var resp smp.Empty
		call(t, d, c.op, c.group, c.id, struct{}{}, &resp)
		err := resp.AsError(c.group, c.id)
		if de, ok := err.(*smp.DeviceError); !ok || !de.NotSupported() {
			t.Errorf("%s in recovery: %v", smp.CommandName(c.group, c.id), err)
		}
	}
	var echo smp.EchoResponse
	call(t, d, smp.OpWrite, smp.GroupOS, smp.OSEcho, smp.EchoRequest{D: "hi"}, &echo)
	if echo.R != "hi" {
		t.Fatalf("echo %q", echo.R)
	}
}
