package smpdev_test

import (
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/smpdev"
)

// FuzzDeviceHandle feeds arbitrary SMP messages to the device: whatever a client sends,
// the device answers or stays silent, and never panics.
func FuzzDeviceHandle(f *testing.F) {
	fl, err := flash.Create(filepath.Join(f.TempDir(), "dev.flash"), flash.Layout{SectorSize: 1024, SlotSize: 8192, BootloaderSize: 1024}, nil, flash.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	defer fl.Close()
	d, err := smpdev.New(fl, smpdev.Options{})
	if err != nil {
		f.Fatal(err)
	}
	l := uint64(100)
	for _, seed := range []struct {
		h   smp.Header
		req any
	}{
		{smp.Header{Op: smp.OpWrite, Group: smp.GroupImage, ID: smp.ImageUpload}, smp.UploadRequest{Len: &l, Data: make([]byte, 50)}},
		{smp.Header{Op: smp.OpWrite, Group: smp.GroupImage, ID: smp.ImageState, Version: smp.Version2}, smp.ImageStateWrite{Hash: make([]byte, 32)}},
		{smp.Header{Op: smp.OpRead, Group: smp.GroupOS, ID: smp.OSInfo}, smp.InfoRequest{Format: "a"}},
		{smp.Header{Op: smp.OpWrite, Group: smp.GroupOS, ID: smp.OSEcho}, smp.EchoRequest{D: "x"}},
	} {
		b, _ := smp.Marshal(seed.req)
		f.Add(smp.BuildMessage(seed.h, b))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, _, err := smp.ParseMessage(msg)
		if err == nil && h.Group == smp.GroupOS && h.ID == smp.OSReset {
			return // a reset reboots the flash: slow, and covered elsewhere
		}
		resp, _ := d.Handle(msg)
		if resp != nil {
			if _, _, err := smp.ParseMessage(resp); err != nil {
				t.Fatalf("device answered a malformed message: %v", err)
			}
		}
	})
}
