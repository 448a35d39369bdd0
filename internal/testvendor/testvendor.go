// Package testvendor is a firmware vendor for tests: a TUF repository made with
// fieldflash-release's own code (verify/release), signed with keys that exist only for
// tests, and one bundle with a release for each virtual device the USB tests flash: the
// STM32 DfuSe bootloader twin, the Zephyr USB DFU twin, and the SMP (MCUboot) twin.
//
// The keys are derived from the public seeds below ("fieldflash-test-only-key-…"):
// anyone can re-derive them, so nothing but a test may ever pin this root. The app's,
// the window's and the USB lab's tests pin it in a $FIELDFLASH_HOME of their own.
package testvendor

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/dfufile"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
	"github.com/fieldflash/fieldflash/verify/release"
)

// Repository is the test vendor's name, as a laptop pins it.
const Repository = "acme-test-only"

// Hardware ids of the releases.
const (
	HardwareSTM32  = "acme-stm32-test"    // the STM32F407 twin (sim/dfudev ProfileSTM32)
	HardwareZephyr = "acme-zephyr-test"   // the Zephyr USB DFU twin (ProfileZephyr)
	HardwareSMP    = "fieldflash-sim-smp" // the SMP twin `fieldflash sim smp` starts
)

// Where the STM32 release's DfuSe elements go: they cover three 16 KiB sectors and one
// 64 KiB sector of the twin's internal flash, not the rest.
const (
	STM32Address0 = 0x08000000
	STM32Address1 = 0x08010000
)

// Vendor is what Make wrote.
type Vendor struct {
	// Root is the root metadata to pin (1.root.json).
	Root []byte
	// RootFile is where Make wrote it; Bundle is the bundle with every release.
	RootFile, Bundle string
	Version          string
	// STM32Elements are the DfuSe file's elements (at STM32Address0 and STM32Address1).
	STM32Elements [2][]byte
	// ZephyrImage is the MCUboot image for the Zephyr twin's download slot.
	ZephyrImage []byte
	// SMPImage is the MCUboot image for the SMP twin.
	SMPImage []byte
}

func key(role string) (*release.SigningKey, error) {
	seed := sha256.Sum256([]byte("fieldflash-test-only-key-" + role))
	return release.NewSigningKey(ed25519.NewKeyFromSeed(seed[:]))
}

// pattern is firmware-looking bytes that never change.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed ^ byte(i>>7)
	}
	return b
}

func u16(v uint16) *uint16 { return &v }
func intp(v int) *int      { return &v }

// Make writes the repository under dir and the bundle dir/acme-test-only-VERSION.fwb with
// version (e.g. "2.0.0") of each release, release counter counter.
func Make(dir, version string, counter uint64) (*Vendor, error) {
	v := &Vendor{Version: version}
	keys := map[string]*release.SigningKey{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		k, err := key(role)
		if err != nil {
			return nil, err
		}
		keys[role] = k
	}
	rk := func(role string) release.RoleKeys {
		return release.RoleKeys{Keys: []*metadata.Key{keys[role].Public()}, Threshold: 1}
	}
	repo, err := release.Init(filepath.Join(dir, "repo"), release.InitOptions{Name: Repository,
		Root: rk("root"), Targets: rk("targets"), Snapshot: rk("snapshot"), Timestamp: rk("timestamp"),
		RootExpires: time.Now().AddDate(5, 0, 0), TargetsExpires: time.Now().AddDate(5, 0, 0)})
	if err != nil {
		return nil, err
	}
	if err := repo.Sign("root", keys["root"]); err != nil {
		return nil, err
	}
	mv, err := mcuboot.ParseVersion(version)
	if err != nil {
		return nil, err
	}
	sc := uint32(counter)

	v.STM32Elements = [2][]byte{pattern(40000, 1), pattern(9000, 2)}
	stm, err := dfufile.BuildDfuSe([]dfufile.TargetImage{{Alt: 0, Name: "Internal Flash", Blocks: []dfufile.Block{
		{Address: STM32Address0, Data: v.STM32Elements[0]}, {Address: STM32Address1, Data: v.STM32Elements[1]}}}},
		dfufile.Suffix{IDVendor: 0x0483, IDProduct: 0xdf11, BcdDevice: 0xffff})
	if err != nil {
		return nil, err
	}
	if v.ZephyrImage, err = mcuboot.Build(pattern(30000, 0x5a), mcuboot.BuildOptions{Version: mv, SecurityCounter: &sc}); err != nil {
		return nil, err
	}
	if v.SMPImage, err = mcuboot.Build(pattern(24000, 0x33), mcuboot.BuildOptions{Version: mv, SecurityCounter: &sc}); err != nil {
		return nil, err
	}
	payloads := []struct {
		path string
		data []byte
		meta verify.TargetMeta
	}{
		{"acme-stm32/app-" + version + ".dfu", stm, verify.TargetMeta{HardwareIDs: []string{HardwareSTM32}, Component: "app", Format: "dfuse",
			Protocol:     verify.ProtocolHints{Protocols: []string{"dfu"}, DFUAlt: intp(0)},
			ReleaseNotes: "Test-only release for the STM32 DfuSe twin."}},
		{"acme-zephyr/app-" + version + ".bin", v.ZephyrImage, verify.TargetMeta{HardwareIDs: []string{HardwareZephyr}, Component: "app", Format: "mcuboot",
			Protocol:     verify.ProtocolHints{Protocols: []string{"dfu"}, DFUAlt: intp(1), USBVendor: u16(0x2fe3), USBProduct: u16(0x0100)},
			ReleaseNotes: "Test-only release for the Zephyr USB DFU twin."}},
		{"fieldflash-sim-smp/app-" + version + ".bin", v.SMPImage, verify.TargetMeta{HardwareIDs: []string{HardwareSMP}, Component: "app", Format: "mcuboot",
			Protocol:     verify.ProtocolHints{Protocols: []string{"smp"}, ImageSlot: intp(0)},
			ReleaseNotes: "Test-only release for the SMP twin."}},
	}
	for _, p := range payloads {
		file := filepath.Join(dir, filepath.Base(p.path))
		if err := os.WriteFile(file, p.data, 0o644); err != nil {
			return nil, err
		}
		p.meta.Version, p.meta.ReleaseCounter = version, counter
		if _, err := repo.AddTarget(release.NewTarget{Path: p.path, File: file, Meta: p.meta}); err != nil {
			return nil, fmt.Errorf("testvendor: %s: %w", p.path, err)
		}
	}
	if err := repo.Sign("targets", keys["targets"]); err != nil {
		return nil, err
	}
	if err := repo.Publish(release.PublishOptions{SnapshotKeys: []*release.SigningKey{keys["snapshot"]}, TimestampKeys: []*release.SigningKey{keys["timestamp"]}}); err != nil {
		return nil, err
	}
	v.RootFile = filepath.Join(repo.Dir, "metadata", "1.root.json")
	if v.Root, err = os.ReadFile(v.RootFile); err != nil {
		return nil, err
	}
	v.Bundle = filepath.Join(dir, Repository+"-"+version+".fwb")
	if _, _, err := repo.BundleFile(v.Bundle, nil); err != nil {
		return nil, err
	}
	return v, nil
}
