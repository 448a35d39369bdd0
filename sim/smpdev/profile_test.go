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

// rawCall sends one request and returns the answer's body as a map, whatever it holds.
func rawCall(t *testing.T, d *smpdev.Device, op smp.Op, group uint16, id uint8, req any) map[string]any {
	t.Helper()
	var m map[string]any
	call(t, d, op, group, id, req, &m)
	return m
}

func rcOf(m map[string]any) int64 {
	switch v := m["rc"].(type) {
	case uint64:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

func offOf(t *testing.T, m map[string]any) uint64 {
	t.Helper()
	v, ok := m["off"].(uint64)
	if !ok {
		t.Fatalf("no off in %v", m)
	}
	return v
}

func upload(off int, data []byte, total int, sha []byte) smp.UploadRequest {
	req := smp.UploadRequest{Off: uint64(off), Data: data}
	if off == 0 {
		l := uint64(total)
		req.Len, req.SHA = &l, sha
	}
	return req
}

// profileDevice is a device running the named profile on a flash that already holds a
// confirmed application (2.0.0, the upstream vector), so it boots into the application
// unless the profile holds the recovery button.
func profileDevice(t *testing.T, name string, part flash.Part) (*smpdev.Device, []byte) {
	t.Helper()
	img, err := os.ReadFile("../../testdata/mcuboot/ecdsa-p256-basic.bin")
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flash.Create(filepath.Join(t.TempDir(), "dev.flash"), layout, []byte("MCUboot"), flash.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	if err := fl.Program(flash.Primary, 0, img); err != nil {
		t.Fatal(err)
	}
	p, err := smpdev.LookupProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := smpdev.New(fl, smpdev.Options{Profile: p, Part: part})
	if err != nil {
		t.Fatal(err)
	}
	return d, img
}

// Stock Zephyr (img_mgmt_upload_inspect): the first chunk must carry the image header
// (32 bytes) before resume is even looked at: an empty offset-0 probe gets rc 3.
func TestZephyrRefusesAnOffsetZeroChunkWithoutTheHeader(t *testing.T) {
	d, img := profileDevice(t, "zephyr", flash.PartNone)
	sha := bytes.Repeat([]byte{7}, 32)
	m := rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, nil, len(img), sha))
	if rcOf(m) != smp.ErrInvalid {
		t.Fatalf("empty first chunk: %v, want rc 3", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:31], len(img), sha))
	if rcOf(m) != smp.ErrInvalid {
		t.Fatalf("31-byte first chunk: %v, want rc 3", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, bytes.Repeat([]byte{1}, 64), len(img), sha))
	if rcOf(m) != smp.ErrUnknown {
		t.Fatalf("first chunk without the MCUboot magic: %v, want rc 1", m)
	}
	// The header chunk starts the upload; the same first chunk again resumes.
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:200], len(img), sha))
	if rcOf(m) != 0 || offOf(t, m) != 200 {
		t.Fatalf("first chunk: %v", m)
	}
	if _, ok := m["rc"]; ok {
		t.Fatalf("stock Zephyr answers an upload without rc (CONFIG_MCUMGR_SMP_LEGACY_RC_BEHAVIOUR is n): %v", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:100], len(img), sha))
	if offOf(t, m) != 200 {
		t.Fatalf("resume with the same sha: %v, want off 200", m)
	}
	// Finish the upload: the state is reset, "match" is absent (no image check), and a
	// first chunk afterwards starts a new upload instead of resuming.
	for off := 200; off < len(img); {
		m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(off, img[off:min(off+300, len(img))], len(img), sha))
		off = int(offOf(t, m))
	}
	if _, ok := m["match"]; ok {
		t.Fatalf("match without CONFIG_IMG_ENABLE_IMAGE_CHECK: %v", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:50], len(img), sha))
	if offOf(t, m) != 50 {
		t.Fatalf("after a finished upload the same first chunk answers %v, want a new upload at 50", m)
	}
}

// Stock Zephyr answers none of params, os info and bootloader info: "not supported".
func TestZephyrDefaultsAnswerNoOptionalCommands(t *testing.T) {
	d, _ := profileDevice(t, "zephyr", flash.PartNone)
	for _, id := range []uint8{smp.OSParams, smp.OSInfo, smp.OSBootloaderInfo} {
		m := rawCall(t, d, smp.OpRead, smp.GroupOS, id, struct{}{})
		if rcOf(m) != smp.ErrNotSupported {
			t.Errorf("%s: %v, want rc 8", smp.CommandName(smp.GroupOS, id), m)
		}
	}
	tuned, _ := profileDevice(t, "zephyr-tuned", flash.PartNone)
	var p smp.ParamsResponse
	call(t, tuned, smp.OpRead, smp.GroupOS, smp.OSParams, struct{}{}, &p)
	if p.BufSize != 4096 || p.BufCount != 4 {
		t.Fatalf("tuned params %+v", p)
	}
}

// With slot 1 pending, img_mgmt_slot_in_use refuses both an upload and an erase of it
// (IMG_MGMT_ERR_NO_FREE_SLOT, rc 6 to an SMP v1 request); testing the running image is
// IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED, not in the v1 table: rc 1.
func TestZephyrRefusesToTouchAPendingSlot(t *testing.T) {
	d, img := profileDevice(t, "zephyr", flash.PartNone)
	// A second image (same bytes, so the same hash as the primary would clash: change
	// the version) in slot 1.
	img2 := bytes.Clone(img)
	sha := bytes.Repeat([]byte{9}, 32)
	for off := 0; off < len(img2); {
		m := rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(off, img2[off:min(off+300, len(img2))], len(img2), sha))
		off = int(offOf(t, m))
	}
	var st smp.ImageStateResponse
	call(t, d, smp.OpRead, smp.GroupImage, smp.ImageState, struct{}{}, &st)
	primaryHash := st.Images[0].Hash
	m := rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageState, smp.ImageStateWrite{Hash: primaryHash})
	if rcOf(m) != smp.ErrUnknown {
		t.Fatalf("test of the running image: %v, want rc 1", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageState, smp.ImageStateWrite{Hash: bytes.Repeat([]byte{3}, 32)})
	if rcOf(m) != smp.ErrUnknown {
		t.Fatalf("test of an unknown hash: %v, want rc 1 (HASH_NOT_FOUND)", m)
	}
	// Mark slot 1 for test by its own hash: the uploaded copy has the same image hash
	// as the primary, which img_mgmt_find_by_hash finds in slot 0 first, so use the
	// erase and upload refusals through the flash model's pending state instead.
	if err := d.MarkSecondaryForTest(); err != nil {
		t.Fatal(err)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageErase, struct{}{})
	if rcOf(m) != smp.ErrBadState {
		t.Fatalf("erase of the pending slot: %v, want rc 6", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:100], len(img), bytes.Repeat([]byte{4}, 32)))
	if rcOf(m) != smp.ErrBadState {
		t.Fatalf("upload over the pending slot: %v, want rc 6", m)
	}
	// Confirming the running image while a test is pending: IMAGE_ALREADY_PENDING.
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageState, smp.ImageStateWrite{Confirm: true})
	if rcOf(m) != smp.ErrBadState {
		t.Fatalf("confirm while a test is pending: %v, want rc 6", m)
	}
}

// Stock MCUboot serial recovery: echo is off (rc 8); upload answers carry rc; only the
// write-aligned part of a chunk is written, so the answered offset can be smaller than
// what was sent; each chunk at offset 0 erases the whole slot.
func TestMCUbootRecoveryAsStockBootSerial(t *testing.T) {
	d, img := profileDevice(t, "mcuboot", flash.PartNRF52840)
	if d.Mode() != flash.ModeRecovery {
		t.Fatalf("the mcuboot profile runs %s", d.Mode())
	}
	m := rawCall(t, d, smp.OpWrite, smp.GroupOS, smp.OSEcho, smp.EchoRequest{D: "hi"})
	if rcOf(m) != smp.ErrNotSupported {
		t.Fatalf("echo: %v, want rc 8", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(0, img[:103], len(img), nil))
	if _, ok := m["rc"]; !ok || rcOf(m) != 0 || offOf(t, m) != 100 {
		t.Fatalf("103 bytes on a 4-byte-aligned flash: %v, want rc 0 off 100", m)
	}
	m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(50, img[50:60], len(img), nil))
	if rcOf(m) != 0 || offOf(t, m) != 100 {
		t.Fatalf("a chunk at the wrong offset: %v, want rc 0 off 100", m)
	}
	for off := 100; off < len(img); {
		m = rawCall(t, d, smp.OpWrite, smp.GroupImage, smp.ImageUpload, upload(off, img[off:min(off+301, len(img))], len(img), nil))
		off = int(offOf(t, m))
	}
	if offOf(t, m) != uint64(len(img)) {
		t.Fatalf("last answer %v", m)
	}
	if got := d.FlashImage(flash.Primary); !got.Valid {
		t.Fatalf("primary after recovery upload: %s", got.Problem)
	}
}
