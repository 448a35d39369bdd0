package campaign

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/ymodemdev"
)

// The campaign's boot checks must see a bricked device, or zero bricked means nothing.
func TestBootCheckSeesABrickedDevice(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	old, err := buildFirmware(r, 9000, "1.0.0", 1)
	if err != nil {
		t.Fatal(err)
	}
	new, err := buildFirmware(r, 9000, "2.0.0", 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// SMP: a primary slot whose image was cut short (a swap gone wrong) boots nothing.
	path := filepath.Join(dir, "smp.flash")
	fl, err := flash.Create(path, smpLayout, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Program(flash.Primary, 0, new.image[:len(new.image)/2]); err != nil {
		t.Fatal(err)
	}
	fl.Close()
	if ran, err := bootSMPFlash(path, old, new); err == nil || !strings.Contains(err.Error(), "bricked") {
		t.Errorf("a half-written primary slot passed the boot check: booted %v, %v", ran, err)
	}

	// YMODEM: the committed application file damaged on the device's flash.
	cfg := ymodemdev.Config{Dir: filepath.Join(dir, "ymodem"), HardwareID: ymodemHardware, Inspect: ymodemdev.MCUbootInspect}
	dev, err := ymodemdev.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Install(old.image, ymodemdev.Info{Version: old.version, Counter: 1}); err != nil {
		t.Fatal(err)
	}
	if ran, err := bootYMODEMFlash(cfg, old, new); err != nil || ran[0] != "old" {
		t.Fatalf("a healthy device failed the boot check: %v, %v", ran, err)
	}
	app, _, _ := dev.Booted()
	if err := os.WriteFile(filepath.Join(cfg.Dir, app.File), old.image[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	if ran, err := bootYMODEMFlash(cfg, old, new); err == nil || !strings.Contains(err.Error(), "bricked") {
		t.Errorf("a damaged application passed the boot check: booted %v, %v", ran, err)
	}
}
