package flash_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Real imgtool images from testdata/mcuboot: an unsigned 1.0.0 without a security
// counter, and 1.2.3+45 with security counter 7.
const vectors = "../../testdata/mcuboot/"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func imageHash(t testing.TB, b []byte) []byte {
	t.Helper()
	img, err := mcuboot.Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return img.ImageHash
}

var small = flash.Layout{SectorSize: 1024, SlotSize: 6 * 1024, BootloaderSize: 1024}

// newDevice makes a flash whose primary holds old (as the factory flashes it: no trailer)
// and boots it.
func newDevice(t testing.TB, path string, old []byte) *flash.Flash {
	t.Helper()
	f, err := flash.Create(path, small, []byte("MCUboot sim"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Program(flash.Primary, 0, old); err != nil {
		t.Fatal(err)
	}
	if res, err := f.Boot(false); err != nil || res.Mode != flash.ModeApplication {
		t.Fatalf("factory boot: %+v, %v", res, err)
	}
	return f
}

func upload(t testing.TB, f *flash.Flash, img []byte) {
	t.Helper()
	if err := f.EraseSlot(flash.Secondary); err != nil {
		t.Fatal(err)
	}
	if err := f.Program(flash.Secondary, 0, img); err != nil {
		t.Fatal(err)
	}
}

func running(t testing.TB, f *flash.Flash) []byte {
	t.Helper()
	info := f.Image(flash.Primary)
	if !info.Valid {
		t.Fatalf("primary image not valid: %s", info.Problem)
	}
	return info.Hash
}

func TestTestedImageRunsOnceThenRevertsUnlessConfirmed(t *testing.T) {
	oldImg, newImg := readVector(t, "unsigned-hash-only.bin"), readVector(t, "ed25519-basic.bin")
	f := newDevice(t, filepath.Join(t.TempDir(), "dev.flash"), oldImg)
	upload(t, f, newImg)
	if err := f.RequestSwap(false); err != nil {
		t.Fatal(err)
	}
	if st := f.SwapType(); st != flash.SwapTest {
		t.Fatalf("swap type %v, want test", st)
	}
	res, err := f.Boot(false)
	if err != nil || res.Swap != flash.SwapTest || res.Mode != flash.ModeApplication {
		t.Fatalf("test boot: %+v %v", res, err)
	}
	if !bytes.Equal(running(t, f), imageHash(t, newImg)) {
		t.Fatal("trial boot does not run the new image")
	}
	if f.SecurityCounter() != 0 {
		t.Fatalf("security counter raised to %d by a trial boot", f.SecurityCounter())
	}
	// Not confirmed: the next boot goes back.
	res, err = f.Boot(false)
	if err != nil || res.Swap != flash.SwapRevert {
		t.Fatalf("second boot: %+v %v", res, err)
	}
	if !bytes.Equal(running(t, f), imageHash(t, oldImg)) {
		t.Fatal("revert does not run the old image")
	}
	if res, _ := f.Boot(false); res.Swap != flash.SwapNone {
		t.Fatalf("after revert the boot swapped again: %+v", res)
	}

	// The revert left the new image in the secondary slot: test it again, and this
	// time the application confirms.
	if err := f.RequestSwap(false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Boot(false); err != nil {
		t.Fatal(err)
	}
	if err := f.ConfirmPrimary(); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.Boot(false); res.Swap != flash.SwapNone || !bytes.Equal(running(t, f), imageHash(t, newImg)) {
		t.Fatalf("confirmed image did not stay: %+v", res)
	}
	if f.SecurityCounter() != 7 {
		t.Fatalf("security counter %d after confirming an image with counter 7", f.SecurityCounter())
	}
}

func TestBootRefusesLowerSecurityCounterAndCorruptImage(t *testing.T) {
	f := newDevice(t, filepath.Join(t.TempDir(), "dev.flash"), readVector(t, "ed25519-basic.bin"))
	if f.SecurityCounter() != 7 {
		t.Fatalf("counter %d after booting a permanent image with counter 7", f.SecurityCounter())
	}
	// The unsigned image has no counter: a device at 7 must not take it.
	upload(t, f, readVector(t, "unsigned-hash-only.bin"))
	f.RequestSwap(true)
	res, err := f.Boot(false)
	if err != nil || res.Swap != flash.SwapNone || res.Refused == "" || res.Mode != flash.ModeApplication {
		t.Fatalf("boot with a rollback candidate: %+v %v", res, err)
	}
	if f.Image(flash.Secondary).Hash != nil {
		t.Fatal("refused candidate was not erased")
	}
	upload(t, f, readVector(t, "fail-hash-flipped-byte.bin"))
	f.RequestSwap(false)
	res, _ = f.Boot(false)
	if res.Swap != flash.SwapNone || res.Refused == "" {
		t.Fatalf("boot with a corrupt candidate: %+v", res)
	}
	t.Logf("refused: %s", res.Refused)
}

func TestEmptyFlashBootsIntoRecovery(t *testing.T) {
	f, err := flash.Create(filepath.Join(t.TempDir(), "dev.flash"), small, nil, flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Boot(false)
	if err != nil || res.Mode != flash.ModeRecovery || res.Refused == "" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestDeviceOutlivesTheProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.flash")
	oldImg, newImg := readVector(t, "unsigned-hash-only.bin"), readVector(t, "ed25519-basic.bin")
	f := newDevice(t, path, oldImg)
	upload(t, f, newImg)
	f.RequestSwap(false)
	f.Close()
	g, err := flash.Open(path, flash.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if string(g.Bootloader()) != "MCUboot sim" {
		t.Fatalf("bootloader %q", g.Bootloader())
	}
	if res, err := g.Boot(false); err != nil || res.Swap != flash.SwapTest {
		t.Fatalf("%+v %v", res, err)
	}
	if !bytes.Equal(running(t, g), imageHash(t, newImg)) {
		t.Fatal("reopened flash lost the pending test")
	}
}

// TestSwapSurvivesPowerCutAtEveryStep cuts the power at every erase/program boundary of a
// test swap and of the revert after it, and inside each operation (first byte, middle,
// last byte), then reopens the file as a new process would and boots. The device must
// always boot one of the two images and keep the other one whole.
func TestSwapSurvivesPowerCutAtEveryStep(t *testing.T) {
	oldImg, newImg := readVector(t, "unsigned-hash-only.bin"), readVector(t, "ed25519-basic.bin")
	oldHash, newHash := imageHash(t, oldImg), imageHash(t, newImg)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.flash")
	f := newDevice(t, base, oldImg)
	upload(t, f, newImg)
	f.RequestSwap(false)
	f.Close()

	// The state after the trial boot, for the revert half.
	trial := filepath.Join(dir, "trial.flash")
	copyFile(t, base, trial)
	g, _ := flash.Open(trial, flash.Options{NoSync: true})
	if _, err := g.Boot(false); err != nil {
		t.Fatal(err)
	}
	g.Close()

	for _, tc := range []struct {
		name       string
		from       string
		before     []byte // running before the interrupted boot
		after      []byte // running once the swap is done
		wantSwap   flash.SwapType
		cutsTested int
	}{
		{name: "test swap", from: base, before: oldHash, after: newHash, wantSwap: flash.SwapTest},
		{name: "revert swap", from: trial, before: newHash, after: oldHash, wantSwap: flash.SwapRevert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One uninterrupted boot to learn where every operation ends.
			probe := filepath.Join(dir, "probe.flash")
			copyFile(t, tc.from, probe)
			p, _ := flash.Open(probe, flash.Options{NoSync: true})
			if res, err := p.Boot(false); err != nil || res.Swap != tc.wantSwap {
				t.Fatalf("%+v %v", res, err)
			}
			ends := p.OpEnds()
			p.Close()
			cuts := map[int64]bool{0: true}
			prev := int64(0)
			for _, e := range ends {
				for _, c := range []int64{prev + 1, (prev + e) / 2, e - 1, e} {
					cuts[c] = true
				}
				prev = e
			}
			for c := int64(0); c < prev; c += 97 { // and a stride through the middle of everything
				cuts[c] = true
			}
			n, spentTrials := 0, 0
			for cut := range cuts {
				n++
				path := filepath.Join(dir, "cut.flash")
				copyFile(t, tc.from, path)
				d, err := flash.Open(path, flash.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				d.CutPowerAfter(cut)
				_, err = d.Boot(false)
				if err != nil && !errors.Is(err, flash.ErrPowerCut) {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				d.Close()

				d, err = flash.Open(path, flash.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				res, err := d.Boot(false)
				if err != nil || res.Mode != flash.ModeApplication {
					t.Fatalf("cut at %d of %d: boot after power returns: %+v %v", cut, prev, res, err)
				}
				run := running(t, d)
				other := d.Image(flash.Secondary)
				switch {
				case bytes.Equal(run, tc.after):
					if !other.Valid || !bytes.Equal(other.Hash, tc.before) {
						t.Fatalf("cut at %d: swap done but the previous image is not whole in the secondary slot (%s)", cut, other.Problem)
					}
				case bytes.Equal(run, tc.before):
					// Cut before the swap began: the request must still stand. Or the
					// test swap finished and the cut came before the trial image ran:
					// as on MCUboot, that trial is spent and the boot reverted, so the
					// new image must be whole in the secondary slot.
					spent := tc.wantSwap == flash.SwapTest && res.Swap == flash.SwapRevert && other.Valid && bytes.Equal(other.Hash, tc.after)
					if d.SwapType() != tc.wantSwap && !spent {
						t.Fatalf("cut at %d: old image runs and the %v request is gone (%v, boot %+v)", cut, tc.wantSwap, d.SwapType(), res)
					}
					if spent {
						spentTrials++
					}
				default:
					t.Fatalf("cut at %d: runs neither image", cut)
				}
				d.Close()
			}
			t.Logf("%s: %d cut points over %d operations (%d bytes written); %d cuts after the swap spent the trial boot", tc.name, n, len(ends), prev, spentTrials)
		})
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
}

// A device whose power was cut confirms nothing: ConfirmPrimary on a factory-flashed
// primary (no boot magic, nothing to write) must still fail like every other operation,
// or the engine would believe a dead device made its image permanent.
func TestConfirmFailsAfterPowerCut(t *testing.T) {
	f := newDevice(t, filepath.Join(t.TempDir(), "flash.bin"), readVector(t, "unsigned-hash-only.bin"))
	defer f.Close()
	if tr := f.Trailer(flash.Primary); tr.Magic {
		t.Fatalf("factory primary has boot magic: %+v", tr)
	}
	f.CutPowerAfter(0)
	if err := f.EraseSlot(flash.Secondary); !errors.Is(err, flash.ErrPowerCut) {
		t.Fatalf("erase at the cut: %v, want ErrPowerCut", err)
	}
	if err := f.ConfirmPrimary(); !errors.Is(err, flash.ErrPowerCut) {
		t.Fatalf("confirm after the power cut: %v, want ErrPowerCut", err)
	}
}
