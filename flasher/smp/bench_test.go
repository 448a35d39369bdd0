package smp_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/smpdev"
)

// ceiling is what console framing leaves of a UART at baud 8N1: 10 bits a byte, 3 data
// bytes per 4 base64 characters, 124 characters per 127-byte frame.
func ceiling(baud int) float64 { return float64(baud) / 10 * 3 / 4 * 124 / 127 / 1000 }

// uploadRate uploads a 70674-byte image over a pseudo-terminal paced at baud in both
// directions and returns KB/s (1000 bytes) of image data.
func uploadRate(t testing.TB, baud int) float64 {
	b := newBench(t, benchOptions{
		factory:   "ed25519-basic.bin",
		memoryFS:  true,
		devicePHY: func(rw io.ReadWriter) io.ReadWriter { return pace(rw, baud) },
	})
	d := smp.New(pace(b.open(t), baud), smp.Options{})
	defer d.Close()
	ctx := context.Background()
	if _, err := d.Identify(ctx); err != nil {
		t.Fatal(err)
	}
	img := loadImage(t, "ecdsa-p256-basic.bin")
	if _, err := d.ResumeOffset(ctx, img); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := d.Write(ctx, img, 0, nil)
	if err != nil || n != img.Size {
		t.Fatalf("%d %v", n, err)
	}
	return float64(img.Size) / time.Since(start).Seconds() / 1000
}

// TestUploadThroughput prints BENCH lines; run with FIELDFLASH_BENCH=1
// (go test -run TestUploadThroughput -v ./flasher/smp/).
func TestUploadThroughput(t *testing.T) {
	if os.Getenv("FIELDFLASH_BENCH") != "1" {
		t.Skip("set FIELDFLASH_BENCH=1 to measure upload throughput (about 15 s)")
	}
	for _, baud := range []int{115200, 460800, 1000000} {
		rate := uploadRate(t, baud)
		fmt.Printf("BENCH smp_upload_%d %.2f KB/s\n", baud, rate)
		fmt.Printf("BENCH smp_upload_%d_of_ceiling %.3f ratio\n", baud, rate/ceiling(baud))
		t.Logf("%d baud: %.2f KB/s of a %.2f KB/s framing ceiling (buffer %d)", baud, rate, ceiling(baud), smpdev.DefaultBufferSize)
	}
}

func BenchmarkUpload115200(b *testing.B) {
	var rate float64
	for b.Loop() {
		rate = uploadRate(b, 115200)
	}
	b.ReportMetric(rate, "KB/s")
	fmt.Printf("BENCH smp_upload_115200 %.2f KB/s\n", rate)
}
