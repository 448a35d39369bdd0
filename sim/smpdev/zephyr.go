package smpdev

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
)

// Zephyr's img_mgmt group error codes (include/zephyr/mgmt/mcumgr/grp/img_mgmt/img_mgmt.h)
// that the stock rules below return, and the SMP v1 "rc" each is translated to by
// img_mgmt_translate_error_code (img_mgmt.c; CONFIG_MCUMGR_SMP_SUPPORT_ORIGINAL_PROTOCOL,
// default y). Codes the table does not list become MGMT_ERR_EUNKNOWN (1).
const (
	zImgHashNotFound       = 8  // -> 1
	zImgNoFreeSlot         = 9  // -> 6
	zImgFlashWriteFailed   = 12 // -> 1
	zImgFlashEraseFailed   = 13 // -> 1
	zImgInvalidOffset      = 20 // -> 3
	zImgInvalidLength      = 21 // -> 3
	zImgInvalidHeader      = 22 // -> 3
	zImgInvalidHeaderMagic = 23 // -> 1
	zImgInvalidHash        = 24 // -> 3
	zImgVersionIsNewer     = 27 // -> 6
	zImgAlreadyPending     = 28 // -> 6
	zImgTooLarge           = 30 // -> 1
	zImgDataOverrun        = 31 // -> 1
	zImgTestActiveDenied   = 33 // -> 1
)

func zephyrV1(code int64) int64 {
	switch code {
	case zImgNoFreeSlot, zImgVersionIsNewer, zImgAlreadyPending:
		return smp.ErrBadState
	case zImgInvalidOffset, zImgInvalidLength, zImgInvalidHeader, zImgInvalidHash, 14 /* INVALID_SLOT */ :
		return smp.ErrInvalid
	case 3, 4: // NO_IMAGE, NO_TLVS
		return smp.ErrNoEntry
	}
	return smp.ErrUnknown
}

// zerr is smp_add_cmd_err: the group error to an SMP v2 request, its v1 translation to a
// v1 request.
func (r *reply) zerr(code int64) any { return r.group(code, zephyrV1(code)) }

// nextBoot is img_mgmt_get_next_boot_slot for the single-image swap modes: the slot the
// next boot runs and how.
type nextBootType int

const (
	nextNormal nextBootType = iota
	nextTest
	nextRevert
)

func (d *Device) nextBootLocked() (slot int, typ nextBootType) {
	switch d.flash.SwapType() {
	case flash.SwapPerm:
		return flash.Secondary, nextNormal
	case flash.SwapTest:
		return flash.Secondary, nextTest
	case flash.SwapRevert:
		return flash.Secondary, nextRevert
	}
	return flash.Primary, nextNormal
}

// slotInUse is img_mgmt_slot_in_use without CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING
// (default n): the running slot, the slot a revert needs, and a slot pending for test or
// for good cannot be erased or uploaded to.
func (d *Device) slotInUseLocked(slot int) bool {
	nbs, typ := d.nextBootLocked()
	if slot == nbs && typ == nextRevert {
		return true
	}
	if (slot == nbs && typ == nextTest) || (nbs != flash.Primary && typ == nextNormal) {
		return true
	}
	return slot == flash.Primary
}

// zephyrUpload is img_mgmt_upload with img_mgmt_upload_inspect (zephyr_img_mgmt.c).
func (d *Device) zephyrUpload(r *reply, body []byte) any {
	var req smp.UploadRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	d.stats.UploadChunks++
	d.stats.UploadBytes += int64(len(req.Data))
	p := d.opt.Profile
	if !hasKey(body, "off") {
		return r.zerr(zImgInvalidOffset)
	}
	slot := flash.Secondary
	if req.Off == 0 {
		// The header comes first, before resume is considered: an offset-0 chunk with
		// fewer than 32 bytes is refused.
		if len(req.Data) < 32 {
			return r.zerr(zImgInvalidHeader)
		}
		if req.Len == nil {
			return r.zerr(zImgInvalidLength)
		}
		if binary.LittleEndian.Uint32(req.Data) != 0x96f3b83d {
			return r.zerr(zImgInvalidHeaderMagic)
		}
		if len(req.SHA) > 32 {
			return r.zerr(zImgInvalidHash)
		}
		// Resume: the same data sha as the upload in progress (the length is not
		// compared) is answered with the offset reached.
		if len(req.SHA) > 0 && d.up.active && bytes.Equal(d.up.sha, req.SHA) {
			return uploadOff(d.up.off)
		}
		if d.slotInUseLocked(slot) {
			return r.zerr(zImgNoFreeSlot)
		}
		if *req.Len > uint64(d.flash.Layout().SlotSize) {
			return r.zerr(zImgTooLarge)
		}
		if req.Upgrade != nil && *req.Upgrade {
			if notNewer, ok := d.notNewer(req.Data); ok && notNewer {
				return r.zerr(zImgVersionIsNewer)
			}
		}
		d.up = upload{active: true, slot: slot, sha: bytes.Clone(req.SHA), len: *req.Len, hash: sha256.New()}
		if !p.EraseProgressively && !d.slotEmptyLocked(slot) {
			// img_mgmt_erase_image_data: the pages the image covers, then the trailer's.
			if err := d.flash.EraseSlot(slot); err != nil {
				d.up = upload{}
				return r.zerr(zImgFlashEraseFailed)
			}
			d.busy += d.opt.Part.EraseDuration(int64(*req.Len)) + d.opt.Part.EraseDuration(1)
		}
	} else {
		if !d.up.active || req.Off != d.up.off {
			// Not the offset expected: the data is dropped and the expected offset
			// answered (0 when no upload is in progress).
			return uploadOff(d.up.off)
		}
		if req.Off+uint64(len(req.Data)) > d.up.len {
			return r.zerr(zImgDataOverrun)
		}
	}
	if len(req.Data) > 0 {
		if p.EraseProgressively {
			// Erase the units this chunk reaches into that are not erased yet.
			d.busy += d.opt.Part.ProgressiveEraseDuration(int64(req.Off), int64(req.Off)+int64(len(req.Data)))
			if req.Off == 0 {
				d.flash.EraseSlot(slot) // the model's flash must be erased before programming
			}
		}
		if err := d.flash.Program(slot, int64(req.Off), req.Data); err != nil {
			d.up = upload{}
			return r.zerr(zImgFlashWriteFailed)
		}
		d.busy += d.opt.Part.ProgramDuration(int64(len(req.Data)))
		d.up.hash.Write(req.Data)
		d.up.off += uint64(len(req.Data))
	}
	off := d.up.off
	if off == d.up.len {
		// Done: the upload state is reset (img_mgmt_reset_upload), so an offset-0
		// chunk afterwards starts a new upload.
		var match *bool
		if p.ImageCheck {
			m := len(d.up.sha) == 32 && bytes.Equal(d.up.hash.Sum(nil), d.up.sha)
			match = &m
		}
		d.up = upload{}
		return smp.UploadResponse{Off: &off, Match: match}
	}
	return uploadOff(off)
}

func uploadOff(off uint64) any { return smp.UploadResponse{Off: &off} }

func (d *Device) slotEmptyLocked(slot int) bool {
	buf := make([]byte, 4096)
	r := d.flash.Slot(slot)
	for off := int64(0); off < d.flash.Layout().SlotSize; off += int64(len(buf)) {
		n, _ := r.ReadAt(buf, off)
		if bytes.Count(buf[:n], []byte{0xff}) != n {
			return false
		}
	}
	return true
}

// zephyrErase is img_mgmt_erase: the other slot unless "slot" says otherwise; refused
// while the slot holds a valid image that is in use.
func (d *Device) zephyrErase(r *reply, body []byte) any {
	var req smp.EraseRequest
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	slot := flash.Secondary
	if req.Slot != nil {
		slot = int(*req.Slot)
	}
	if slot != flash.Primary && slot != flash.Secondary {
		return r.zerr(14) // IMG_MGMT_ERR_INVALID_SLOT
	}
	if d.flash.Image(slot).Valid && d.slotInUseLocked(slot) {
		return r.zerr(zImgNoFreeSlot)
	}
	if !d.slotEmptyLocked(slot) {
		if err := d.flash.EraseSlot(slot); err != nil {
			d.up = upload{}
			return r.zerr(zImgFlashEraseFailed)
		}
		d.busy += d.opt.Part.EraseDuration(d.flash.Layout().SlotSize)
	}
	d.up = upload{}
	return map[string]any{}
}

// zephyrStateWrite is img_mgmt_state_write with img_mgmt_set_next_boot_slot for the
// swap modes (img_mgmt_state.c).
func (d *Device) zephyrStateWrite(r *reply, body []byte) any {
	var req smp.ImageStateWrite
	if smp.Unmarshal(body, &req) != nil {
		return r.generic(smp.ErrInvalid)
	}
	var slot int
	switch {
	case len(req.Hash) == 0 && req.Confirm:
		slot = flash.Primary
	case len(req.Hash) != 32:
		return r.zerr(zImgInvalidHash)
	default:
		slot = -1
		for s := range 2 {
			if info := d.flash.Image(s); info.Hash != nil && bytes.Equal(info.Hash, req.Hash) {
				slot = s
				break
			}
		}
		if slot < 0 {
			return r.zerr(zImgHashNotFound)
		}
	}
	active := flash.Primary
	nbs, typ := d.nextBootLocked()
	if !req.Confirm && slot == active {
		return r.zerr(zImgTestActiveDenied)
	}
	switch typ {
	case nextTest:
		if !req.Confirm && slot == nbs {
			return d.state()
		}
		return r.zerr(zImgAlreadyPending)
	case nextNormal:
		if req.Confirm && slot == nbs {
			return d.state()
		}
		if (slot == active && active != nbs) || (!req.Confirm && slot != active && slot == nbs) {
			return r.zerr(zImgAlreadyPending)
		}
	case nextRevert:
		if req.Confirm && slot == nbs {
			return d.state()
		}
		if !req.Confirm {
			return r.zerr(zImgAlreadyPending)
		}
	}
	var err error
	if slot == active {
		err = d.flash.ConfirmPrimary()
	} else {
		if !d.flash.Image(slot).Valid {
			return r.zerr(zImgInvalidHeaderMagic) // boot_set_next: BOOT_EBADIMAGE
		}
		err = d.flash.RequestSwap(req.Confirm)
	}
	if err != nil {
		return r.zerr(zImgFlashWriteFailed)
	}
	return d.state()
}

// hasKey reports whether a CBOR map has a text key: Zephyr tells a missing "off" from 0.
func hasKey(body []byte, key string) bool {
	var m map[string]any
	if smp.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
