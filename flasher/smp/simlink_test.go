package smp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"go.bug.st/serial"
)

// TestUploadThroughputOverSimLink measures the same upload over sim/link, the simulator's
// own cable (pty, baud pacing in both directions), as `fieldflash sim` runs it. Run with
// FIELDFLASH_BENCH=1.
func TestUploadThroughputOverSimLink(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("set FIELDFLASH_BENCH=1 to measure upload throughput over sim/link")
	}
	for _, baud := range []int{115200, 460800, 1000000} {
		dir := t.TempDir()
		if d, err := os.MkdirTemp("/dev/shm", "fieldflash-smp-"); err == nil {
			dir = d
			defer os.RemoveAll(d)
		}
		fl, err := flash.Create(filepath.Join(dir, "device.flash"), flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}, nil, flash.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		fl.Program(flash.Primary, 0, imageBytes(loadImage(t, "ed25519-basic.bin")))
		dev, err := smpdev.New(fl, smpdev.Options{HardwareID: "acme-gw-r2"})
		if err != nil {
			t.Fatal(err)
		}
		l, err := link.Open(link.Config{Baud: baud})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go smpdev.Serve(ctx, l.Device(), dev)

		p, err := serial.Open(l.HostPath(), &serial.Mode{BaudRate: baud})
		if err != nil {
			t.Fatal(err)
		}
		p.SetReadTimeout(20 * time.Millisecond)
		d := smp.New(p, smp.Options{Baud: baud})
		if _, err := d.Identify(ctx); err != nil {
			t.Fatal(err)
		}
		img := loadImage(t, "ecdsa-p256-basic.bin")
		start := time.Now()
		if n, err := d.Write(ctx, img, 0, nil); err != nil || n != img.Size {
			t.Fatalf("%d %v", n, err)
		}
		rate := float64(img.Size) / time.Since(start).Seconds() / 1000
		d.Close()
		fmt.Printf("BENCH smp_upload_simlink_%d %.2f KB/s\n", baud, rate)
		fmt.Printf("BENCH smp_upload_simlink_%d_of_ceiling %.3f ratio\n", baud, rate/ceiling(baud))
	}
}
