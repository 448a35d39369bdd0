package campaign

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/fieldflash/fieldflash/flasher"
)

// TestYMODEMUpdateEndsInstalled is a clean update of a classic bootloader through the
// engine: docs/engine.md promises the outcome `installed`. The campaign found it ending
// `failed` at probe once: the driver reported its bootloader as Mode "recovery", which the
// probe reads as "still in the bootloader, keep waiting" (now flasher.ModeBootloader).
func TestYMODEMUpdateEndsInstalled(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	old, err := buildFirmware(r, 10000, "1.0.0", 1)
	if err != nil {
		t.Fatal(err)
	}
	new, err := buildFirmware(r, 10000, "2.0.0", 2)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := writeBundle(dir, new, "ymodem", ymodemHardware)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newField(fieldConfig{protocol: "ymodem", dir: dir, old: old})
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	res, err := f.attempt(context.Background(), bundle, filepath.Join(dir, "journal"), nil, 0, new)
	if err != nil {
		t.Fatal(err)
	}
	if res.result != flasher.ResultInstalled {
		t.Errorf("a clean YMODEM update ended %s, want installed", res.summary)
	}
	ran, err := bootYMODEMFlash(f.ycfg, old, new)
	if err != nil || ran[0] != "new" {
		t.Errorf("the device boots %v (%v), want the new image", ran, err)
	}
}
