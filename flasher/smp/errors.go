package smp

import "fmt"

// SMP v1 / generic management error codes (Zephyr's MGMT_ERR_*).
const (
	ErrOK           = 0
	ErrUnknown      = 1
	ErrNoMem        = 2
	ErrInvalid      = 3
	ErrTimeout      = 4
	ErrNoEntry      = 5
	ErrBadState     = 6
	ErrMsgSize      = 7
	ErrNotSupported = 8
	ErrCorrupt      = 9
	ErrBusy         = 10
	ErrAccessDenied = 11
)

var mgmtMeaning = map[int64]string{
	ErrUnknown:      "unknown error",
	ErrNoMem:        "out of memory",
	ErrInvalid:      "invalid value in the request",
	ErrTimeout:      "timed out",
	ErrNoEntry:      "no such entry",
	ErrBadState:     "the device is in a state that does not allow this",
	ErrMsgSize:      "request larger than the device's buffer",
	ErrNotSupported: "command not supported",
	ErrCorrupt:      "data corrupt",
	ErrBusy:         "device busy",
	ErrAccessDenied: "access denied",
	12:              "command too old for this device",
	13:              "command too new for this device",
}

// Image group v2 error codes (Zephyr's IMG_MGMT_ERR_*), the ones this package and its
// simulator use by name.
const (
	ImgErrUnknown            = 1
	ImgErrNoImage            = 3
	ImgErrHashNotFound       = 8
	ImgErrNoFreeSlot         = 9
	ImgErrFlashWriteFailed   = 12
	ImgErrInvalidSlot        = 14
	ImgErrInvalidOffset      = 20
	ImgErrInvalidLength      = 21
	ImgErrInvalidHeaderMagic = 23
	ImgErrInvalidHash        = 24
	ImgErrVersionIsNewer     = 27
	ImgErrAlreadyPending     = 28
	ImgErrTooLarge           = 30
	ImgErrDataOverrun        = 31
	ImgErrConfirmDenied      = 32
	ImgErrTestActiveDenied   = 33
)

var imageMeaning = map[int64]string{
	1:  "unknown image error",
	2:  "flash configuration query failed",
	3:  "no image in the slot",
	4:  "image has no TLVs",
	5:  "image has an invalid TLV",
	6:  "image has several hash TLVs",
	7:  "image TLV has an invalid size",
	8:  "no image with that hash",
	9:  "no free slot",
	10: "flash open failed",
	11: "flash read failed",
	12: "flash write failed",
	13: "flash erase failed",
	14: "invalid slot",
	15: "device out of memory",
	16: "flash context already set",
	17: "flash context not set",
	18: "flash area device missing",
	19: "invalid page offset",
	20: "upload offset out of order",
	21: "invalid upload length",
	22: "invalid image header",
	23: "invalid image header magic",
	24: "invalid hash",
	25: "invalid flash address",
	26: "version query failed",
	27: "the running image is newer",
	28: "an image is already pending",
	29: "invalid image vector table",
	30: "image too large for the slot",
	31: "upload carries more data than announced",
	32: "image confirmation denied",
	33: "setting the active image to test denied",
}

var osMeaning = map[int64]string{
	1: "unknown os error",
	2: "invalid format string",
	3: "query yields no answer",
	4: "RTC not set",
	5: "RTC command failed",
	6: "query response value not valid",
}

var commandNames = map[[2]uint16]string{
	{GroupOS, uint16(OSEcho)}:           "os echo",
	{GroupOS, uint16(OSReset)}:          "os reset",
	{GroupOS, uint16(OSParams)}:         "os mcumgr params",
	{GroupOS, uint16(OSInfo)}:           "os info",
	{GroupOS, uint16(OSBootloaderInfo)}: "os bootloader info",
	{GroupImage, uint16(ImageState)}:    "image state",
	{GroupImage, uint16(ImageUpload)}:   "image upload",
	{GroupImage, uint16(ImageErase)}:    "image erase",
}

// CommandName names a group/command pair as mcumgr's command line does.
func CommandName(group uint16, id uint8) string {
	if n, ok := commandNames[[2]uint16{group, uint16(id)}]; ok {
		return n
	}
	return fmt.Sprintf("group %d command %d", group, id)
}

// DeviceError is a refusal the device sent: SMP v1 {"rc"} (Group is the request's group,
// Generic true) or SMP v2 {"err": {"group", "rc"}}.
type DeviceError struct {
	Group   uint16 // the group whose rc table applies
	Command string // "image upload"
	RC      int64
	Generic bool   // rc is a generic MGMT_ERR code (SMP v1 "rc" form)
	Reason  string // the device's "rsn", if any
}

// Meaning is what the rc means in its table.
func (e *DeviceError) Meaning() string {
	table := mgmtMeaning
	if !e.Generic {
		switch e.Group {
		case GroupImage:
			table = imageMeaning
		case GroupOS:
			table = osMeaning
		}
	}
	if m, ok := table[e.RC]; ok {
		return m
	}
	return "unknown code"
}

func (e *DeviceError) Error() string {
	form := fmt.Sprintf("group %d rc %d", e.Group, e.RC)
	if e.Generic {
		form = fmt.Sprintf("rc %d", e.RC)
	}
	msg := fmt.Sprintf("%s refused: %s (%s)", e.Command, e.Meaning(), form)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if next := e.Next(); next != "" {
		msg += "; " + next
	}
	return msg
}

// Next is what the user can do about the refusal, where there is something to do.
func (e *DeviceError) Next() string {
	if e.Generic {
		switch e.RC {
		case ErrNotSupported:
			return ""
		case ErrMsgSize, ErrNoMem:
			return "the device's buffer is smaller than it reported; retry with a smaller buffer size"
		case ErrBusy:
			return "wait a moment and retry"
		case ErrBadState:
			return "read the device's image state: confirm or revert the running image first"
		}
		return ""
	}
	if e.Group != GroupImage {
		return ""
	}
	switch e.RC {
	case ImgErrNoFreeSlot, ImgErrAlreadyPending:
		return "the secondary slot is in use: confirm or revert the running image, then retry"
	case ImgErrVersionIsNewer:
		return "the device already runs a newer image; use a newer bundle"
	case ImgErrTooLarge:
		return "the image does not fit the device's slot; check the bundle is for this hardware"
	case ImgErrHashNotFound, ImgErrNoImage:
		return "upload the image first"
	case ImgErrFlashWriteFailed, 13:
		return "the device's flash failed; retry once, then send the device in for service"
	}
	return ""
}

// NotSupported reports whether the device does not know the command, the answer MCUboot
// serial recovery gives to what it does not implement.
func (e *DeviceError) NotSupported() bool {
	return e.Generic && e.RC == ErrNotSupported
}

// Err turns a response's status into an error naming the command; nil when it is a success.
func (s *Status) AsError(group uint16, id uint8) error {
	if s.Err != nil && s.Err.RC != 0 {
		return &DeviceError{Group: s.Err.Group, Command: CommandName(group, id), RC: s.Err.RC, Reason: s.RSN}
	}
	if s.RC != nil && *s.RC != 0 {
		return &DeviceError{Group: group, Command: CommandName(group, id), RC: *s.RC, Generic: true, Reason: s.RSN}
	}
	return nil
}
