package smpdev

import (
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/sim/flash"
)

// mcubootUpload is boot_serial.c's bs_upload into the primary slot (no
// MCUBOOT_SERIAL_DIRECT_IMAGE_UPLOAD): every answer carries "rc"; a chunk at offset 0
// starts over and, without progressive erase, erases the whole slot first; a chunk at
// another offset than the one expected is answered rc 0 with the expected offset; only
// the write-aligned part of a chunk is written (except the last), so the answer's offset
// can be smaller than what was sent.
func (d *Device) mcubootUpload(r *reply, body []byte) any {
	var req smp.UploadRequest
	if smp.Unmarshal(body, &req) != nil || !hasKey(body, "off") || !hasKey(body, "data") {
		return map[string]int64{"rc": smp.ErrInvalid}
	}
	d.stats.UploadChunks++
	d.stats.UploadBytes += int64(len(req.Data))
	if req.Image != nil && *req.Image > 1 {
		return map[string]int64{"rc": smp.ErrNoEntry}
	}
	p := d.opt.Profile
	slot := flash.Primary
	size := d.flash.Layout().SlotSize
	if req.Off == 0 {
		d.up = upload{}
		if req.Len == nil || int64(*req.Len) > size {
			return map[string]int64{"rc": smp.ErrInvalid}
		}
		if !p.RecoveryEraseProgressively {
			if err := d.flash.EraseSlot(slot); err != nil {
				return map[string]int64{"rc": smp.ErrInvalid}
			}
			d.busy += d.opt.Part.EraseDuration(size)
		} else {
			d.flash.EraseSlot(slot) // the model erases at once; the time is charged per chunk below
		}
		d.up = upload{active: true, slot: slot, len: *req.Len}
	} else if !d.up.active || req.Off != d.up.off {
		return map[string]any{"rc": 0, "off": d.up.off}
	} else if req.Off+uint64(len(req.Data)) > d.up.len {
		return map[string]int64{"rc": smp.ErrInvalid}
	}
	data := req.Data
	if align := d.opt.Part.WriteAlign; align > 1 {
		rem := len(data) % align
		if req.Off+uint64(len(data)) < d.up.len {
			data = data[:len(data)-rem] // the rest is asked for again
		}
	}
	if p.RecoveryEraseProgressively {
		d.busy += d.opt.Part.ProgressiveEraseDuration(int64(req.Off), int64(req.Off)+int64(len(data)))
	}
	if err := d.flash.Program(slot, int64(req.Off), data); err != nil {
		return map[string]int64{"rc": smp.ErrInvalid}
	}
	d.busy += d.opt.Part.ProgramDuration(int64(len(data)))
	d.up.off += uint64(len(data))
	return map[string]any{"rc": 0, "off": d.up.off}
}
