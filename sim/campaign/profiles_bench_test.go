package campaign

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/link"
	"github.com/fieldflash/fieldflash/sim/smpdev"
	"github.com/fieldflash/fieldflash/transports/serial"
)

// profileBoard is one device profile on one flash part, as the bench measures it.
type profileBoard struct {
	profile smpdev.Profile
	part    flash.Part
}

// benchLayout: 128 KiB slots, so a 64 KiB image and its trailer fit on every part.
var benchLayout = flash.Layout{SectorSize: 4096, SlotSize: 0x20000, BootloaderSize: 0x4000}

// TestBenchSMPProfiles measures, for each device profile (sim/smpdev) on each flash part
// (sim/flash), one upload of a 64 KiB image over the simulator's cable paced at 115200
// baud: fieldflash's client as it runs (adaptive window, transport found by itself)
// against the same client in stop-and-wait mode (one chunk, then its answer, as mcumgr's
// Go command line and smpclient send) on the same board, and against the profile's
// ceiling: the time the request bytes need on the line (framing included, at the chunk
// size the device's buffer gives) plus the device's erase and program time, as that
// profile erases (stock Zephyr the image's pages and the trailer's before answering the
// first chunk, tuned Zephyr as the chunks reach new pages, MCUboot its whole slot). Both
// slots hold an older image first, so erases cost what they cost in the field. Medians of
// three uploads; prints BENCH smp_<profile>_<part>_{fieldflash,stop_and_wait,ceiling}
// in KB/s and the two ratios.
func TestBenchSMPProfiles(t *testing.T) {
	benchOnly(t)
	const baud = 115200
	var boards []profileBoard
	for _, prof := range []smpdev.Profile{smpdev.ProfileZephyr, smpdev.ProfileZephyrTuned} {
		for _, part := range []flash.Part{flash.PartNRF52840, flash.PartSTM32F4, flash.PartNone} {
			boards = append(boards, profileBoard{prof, part})
		}
	}
	for _, part := range []flash.Part{flash.PartNRF52840, flash.PartSTM32F4} {
		boards = append(boards, profileBoard{smpdev.ProfileMCUboot, part})
	}
	r := rand.New(rand.NewPCG(64, 64))
	old, err := buildFirmware(r, 60<<10, "1.0.0", 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err := buildFirmware(r, 64<<10-512, "2.0.0", 2)
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv("FIELDFLASH_BENCH_BOARDS") // e.g. "zephyr_nrf52840,mcuboot_stm32f4"
	for _, b := range boards {
		name := "smp_" + b.profile.Name + "_" + b.part.Name
		if only != "" && !slices.Contains(strings.Split(only, ","), b.profile.Name+"_"+b.part.Name) {
			continue
		}
		var rates [2][]float64
		var wire int64
		for range 3 {
			for mode, stopAndWait := range []bool{false, true} {
				res, err := uploadOnce(t, b, baud, old, img, stopAndWait)
				if err != nil {
					t.Fatalf("%s (stop-and-wait %v): %v", name, stopAndWait, err)
				}
				rates[mode] = append(rates[mode], float64(len(img.image))/res.elapsed.Seconds()/1000)
				wire = res.wire
			}
		}
		ceil := profileCeiling(b, int64(len(img.image)), wire, baud)
		ff, sw := median(rates[0]), median(rates[1])
		fmt.Printf("BENCH %s_fieldflash %.2f KB/s\n", name, ff)
		fmt.Printf("BENCH %s_stop_and_wait %.2f KB/s\n", name, sw)
		fmt.Printf("BENCH %s_ceiling %.2f KB/s\n", name, ceil)
		fmt.Printf("BENCH %s_vs_stop_and_wait %.3f ratio\n", name, ff/sw)
		fmt.Printf("BENCH %s_vs_ceiling %.3f ratio\n", name, ff/ceil)
		t.Logf("%s: %d request bytes on the line; runs %.2f / %.2f KB/s", name, wire, rates[0], rates[1])
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

type uploadResult struct {
	elapsed time.Duration
	wire    int64 // request bytes the upload needs on the line, at the client's chunk sizes
}

// uploadOnce puts old in both slots of a fresh board and uploads img to it once, timed
// from the first upload request to the last answer (Identify runs before the clock).
func uploadOnce(t *testing.T, b profileBoard, baud int, old, img *firmware, stopAndWait bool) (uploadResult, error) {
	dir := t.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "fieldflash-bench-"); err == nil {
		dir = d
		defer os.RemoveAll(d)
	}
	fl, err := flash.Create(filepath.Join(dir, "device.flash"), benchLayout, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		return uploadResult{}, err
	}
	defer fl.Close()
	if err := fl.Program(flash.Primary, 0, old.image); err != nil {
		return uploadResult{}, err
	}
	if err := fl.Program(flash.Secondary, 0, old.image); err != nil {
		return uploadResult{}, err
	}
	prof := b.profile
	dev, err := smpdev.New(fl, smpdev.Options{HardwareID: smpHardware, Profile: &prof, Part: b.part, Baud: baud})
	if err != nil {
		return uploadResult{}, err
	}
	l, err := link.Open(link.Config{Baud: baud})
	if err != nil {
		return uploadResult{}, err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go smpdev.Serve(ctx, l.Device(), dev)
	p, err := serial.Open(l.HostPath(), baud)
	if err != nil {
		return uploadResult{}, err
	}
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		p.Close()
		return uploadResult{}, err
	}
	d := smp.New(p, smp.Options{Baud: baud, StopAndWait: stopAndWait})
	defer d.Close()
	if _, err := d.Identify(ctx); err != nil {
		return uploadResult{}, fmt.Errorf("identify: %w", err)
	}
	fw := &flasher.Image{Name: "app.bin", Size: int64(len(img.image)), SHA256: img.sha, Data: bytes.NewReader(img.image)}
	start := time.Now()
	from, err := d.ResumeOffset(ctx, fw)
	if err != nil {
		return uploadResult{}, fmt.Errorf("resume probe: %w", err)
	}
	n, err := d.Write(ctx, fw, from, nil)
	if err != nil || n != fw.Size {
		return uploadResult{}, fmt.Errorf("upload: %d of %d bytes: %v", n, fw.Size, err)
	}
	elapsed := time.Since(start)
	wire, err := requestBytes(d, fw, prof.BootsToRecovery)
	return uploadResult{elapsed: elapsed, wire: wire}, err
}

// requestBytes is what the upload requests of fw take on the line: each chunk as the
// client cuts it (cut to 16 bytes in serial recovery), its SMP message, and the console's
// framing unless the raw transport carries it.
func requestBytes(d *smp.Driver, fw *flasher.Image, recovery bool) (int64, error) {
	var total int64
	for off := int64(0); off < fw.Size; {
		c := int64(d.ChunkSize(fw, off))
		if recovery && c < fw.Size-off && c > 16 {
			c &^= 15
		}
		c = min(c, fw.Size-off)
		req := smp.UploadRequest{Off: uint64(off), Data: make([]byte, c)}
		if off == 0 {
			n, image := uint64(fw.Size), uint32(0)
			req.Len, req.Image, req.SHA = &n, &image, fw.SHA256[:]
		}
		body, err := smp.Marshal(req)
		if err != nil {
			return 0, err
		}
		msg := int64(smp.HeaderSize + len(body))
		if d.Transport() == smp.TransportRaw {
			total += msg
		} else {
			total += int64(smp.EncodedLen(int(msg), smp.Frame127))
		}
		off += c
	}
	return total, nil
}

// profileCeiling is the fastest an upload of n bytes can go on the board: every request
// byte on the line at baud (8N1), chunks as large as the device's buffer takes, plus the
// flash time the device spends before it answers (it receives nothing meanwhile on a part
// whose UART loses bytes), as the profile erases.
func profileCeiling(b profileBoard, n, requestBytes int64, baud int) float64 {
	wire := time.Duration(requestBytes) * 10 * time.Second / time.Duration(baud)
	var erase time.Duration
	switch {
	case b.profile.BootsToRecovery && !b.profile.RecoveryEraseProgressively:
		erase = b.part.EraseDuration(benchLayout.SlotSize)
	case b.profile.BootsToRecovery || b.profile.EraseProgressively:
		erase = b.part.ProgressiveEraseDuration(0, n)
	default:
		erase = b.part.EraseDuration(n) + b.part.EraseDuration(1)
	}
	total := wire + erase + b.part.ProgramDuration(n)
	return float64(n) / total.Seconds() / 1000
}
