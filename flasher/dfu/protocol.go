package dfu

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Class requests (DFU 1.1 table 3.2). DfuSe reuses DNLOAD and UPLOAD for its commands.
const (
	ReqDetach    = 0
	ReqDnload    = 1
	ReqUpload    = 2
	ReqGetStatus = 3
	ReqClrStatus = 4
	ReqGetState  = 5
	ReqAbort     = 6
)

// Interface class codes: application specific, DFU subclass.
const (
	InterfaceClass       = 0xfe
	InterfaceSubClass    = 0x01
	ProtocolRuntime      = 0x01 // the application's run-time DFU interface
	ProtocolDFUMode      = 0x02 // the DFU mode interface (DfuSe devices also use 2)
	DescFunctional       = 0x21 // DFU functional descriptor type
	FunctionalDescLength = 9
)

// State is bState of a GETSTATUS or GETSTATE answer (DFU 1.1 section 6.1.2).
type State uint8

// The DFU states.
const (
	StateAppIdle           State = 0
	StateAppDetach         State = 1
	StateIdle              State = 2
	StateDnloadSync        State = 3
	StateDnBusy            State = 4
	StateDnloadIdle        State = 5
	StateManifestSync      State = 6
	StateManifest          State = 7
	StateManifestWaitReset State = 8
	StateUploadIdle        State = 9
	StateError             State = 10
)

var stateNames = [...]string{"appIDLE", "appDETACH", "dfuIDLE", "dfuDNLOAD-SYNC", "dfuDNBUSY", "dfuDNLOAD-IDLE",
	"dfuMANIFEST-SYNC", "dfuMANIFEST", "dfuMANIFEST-WAIT-RESET", "dfuUPLOAD-IDLE", "dfuERROR"}

var stateMeaning = [...]string{
	"the application runs and waits for a DFU detach",
	"the application got a detach and waits for a USB reset to enter DFU mode",
	"DFU mode, ready for a download or upload",
	"a block was received; the device waits for GETSTATUS to start writing it",
	"the device is writing a block to flash",
	"the device wrote the last block and waits for the next one",
	"the last block was received; the device waits for GETSTATUS to start manifestation",
	"the device is installing (manifesting) the new firmware",
	"the device installed the firmware and waits for a USB reset to run it",
	"an upload is under way",
	"the device stopped with an error; it waits for CLRSTATUS",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state %d", uint8(s))
}

// Meaning says in words what the device is doing in state s.
func (s State) Meaning() string {
	if int(s) < len(stateMeaning) {
		return stateMeaning[s]
	}
	return "a state DFU 1.1 does not define (the device firmware is not standard)"
}

// Status is bStatus of a GETSTATUS answer (DFU 1.1 section 6.1.2).
type Status uint8

// The DFU status codes.
const (
	StatusOK             Status = 0x00
	StatusErrTarget      Status = 0x01
	StatusErrFile        Status = 0x02
	StatusErrWrite       Status = 0x03
	StatusErrErase       Status = 0x04
	StatusErrCheckErased Status = 0x05
	StatusErrProg        Status = 0x06
	StatusErrVerify      Status = 0x07
	StatusErrAddress     Status = 0x08
	StatusErrNotDone     Status = 0x09
	StatusErrFirmware    Status = 0x0a
	StatusErrVendor      Status = 0x0b
	StatusErrUSBR        Status = 0x0c
	StatusErrPOR         Status = 0x0d
	StatusErrUnknown     Status = 0x0e
	StatusErrStalledPkt  Status = 0x0f
)

// statusInfo is each status code's name, its meaning (DFU 1.1 table 6.1.2 in plain words)
// and the next step for the person at the device.
var statusInfo = [...]struct{ name, meaning, next string }{
	{"OK", "no error", ""},
	{"errTARGET", "the file is not meant for this device", "check that the bundle is the one made for this device (its USB vendor and product id)"},
	{"errFILE", "the file fails a vendor-specific check of the device", "the image is not one this device accepts; ask the release team for a build for this device"},
	{"errWRITE", "the device cannot write its memory", "the device refuses writes to this alternate setting or its flash is protected; check the bundle's dfu_alt hint, or unprotect the flash (DfuSe read-unprotect) and flash again"},
	{"errERASE", "erasing the memory failed", "flash again; if it fails again the device's flash may be worn or protected: contact support"},
	{"errCHECK_ERASED", "the memory was not blank after the erase", "flash again; if it fails again the device's flash may be worn: contact support"},
	{"errPROG", "programming the memory failed", "flash again; if it fails again the device's flash may be worn: contact support"},
	{"errVERIFY", "the programmed memory does not read back as written", "flash again; if it fails again the device's flash may be worn: contact support"},
	{"errADDRESS", "the address is outside the device's memory", "check the bundle's address hint against the device's memory layout (fieldflash devices shows it)"},
	{"errNOTDONE", "the device got the end of the download but thinks it has not got everything", "flash again from the start"},
	{"errFIRMWARE", "the device's firmware is corrupt and it cannot leave DFU mode", "the device stays in DFU mode: flash a good image"},
	{"errVENDOR", "a vendor-specific error (iString may say more)", "note the message for support and flash again"},
	{"errUSBR", "the device saw an unexpected USB reset", "keep the cable still and flash again"},
	{"errPOR", "the device saw an unexpected power-on reset", "check the power supply and flash again"},
	{"errUNKNOWN", "something went wrong, the device does not say what", "flash again; if it fails again, power-cycle the device in DFU mode and flash again"},
	{"errSTALLEDPKT", "the device stalled an unexpected request", "flash again; the device was in a state the request did not fit"},
}

func (s Status) String() string {
	if int(s) < len(statusInfo) {
		return statusInfo[s].name
	}
	return fmt.Sprintf("status 0x%02x", uint8(s))
}

// Meaning says in words what status s means.
func (s Status) Meaning() string {
	if int(s) < len(statusInfo) {
		return statusInfo[s].meaning
	}
	return "a status DFU 1.1 does not define"
}

// Next is the next step for a person when the device reports s.
func (s Status) Next() string {
	if int(s) < len(statusInfo) {
		return statusInfo[s].next
	}
	return "note the status for support and flash again"
}

// StatusReply is a GETSTATUS answer.
type StatusReply struct {
	Status      Status
	PollTimeout time.Duration // bwPollTimeout: wait this long before the next GETSTATUS
	State       State
	IString     uint8
}

// StatusReplyLength is the length of a GETSTATUS answer.
const StatusReplyLength = 6

// ParseStatus reads a GETSTATUS answer.
func ParseStatus(b []byte) (StatusReply, error) {
	if len(b) < StatusReplyLength {
		return StatusReply{}, fmt.Errorf("dfu: GETSTATUS answered %d bytes, not %d", len(b), StatusReplyLength)
	}
	ms := uint32(b[1]) | uint32(b[2])<<8 | uint32(b[3])<<16
	return StatusReply{Status: Status(b[0]), PollTimeout: time.Duration(ms) * time.Millisecond, State: State(b[4]), IString: b[5]}, nil
}

// Bytes encodes r as a device sends it.
func (r StatusReply) Bytes() []byte {
	ms := uint32(r.PollTimeout / time.Millisecond)
	if ms > 0xffffff {
		ms = 0xffffff
	}
	return []byte{byte(r.Status), byte(ms), byte(ms >> 8), byte(ms >> 16), byte(r.State), r.IString}
}

// Attributes are bmAttributes of the functional descriptor.
type Attributes uint8

// The attribute bits.
const (
	AttrCanDnload             Attributes = 1 << 0
	AttrCanUpload             Attributes = 1 << 1
	AttrManifestationTolerant Attributes = 1 << 2
	AttrWillDetach            Attributes = 1 << 3
)

// Functional is the DFU functional descriptor (DFU 1.1 section 4.1.3).
type Functional struct {
	Attributes    Attributes
	DetachTimeout time.Duration // wDetachTimeOut
	TransferSize  int           // wTransferSize
	Version       uint16        // bcdDFUVersion: 0x0110 DFU 1.1, 0x011a DfuSe, 0x0100 DFU 1.0
}

// DFU versions seen in bcdDFUVersion.
const (
	Version10    = 0x0100
	Version11    = 0x0110
	VersionDfuSe = 0x011a
)

// ParseFunctional reads a functional descriptor. DFU 1.0 devices send 7 bytes (no
// bcdDFUVersion); those are read as version 1.0.
func ParseFunctional(b []byte) (Functional, error) {
	if len(b) < 7 || int(b[0]) > len(b) || b[0] < 7 {
		return Functional{}, fmt.Errorf("dfu: functional descriptor of %d bytes (bLength %d): DFU needs 7 or 9", len(b), firstByte(b))
	}
	if b[1] != DescFunctional {
		return Functional{}, fmt.Errorf("dfu: descriptor type 0x%02x is not a DFU functional descriptor (0x21)", b[1])
	}
	f := Functional{
		Attributes:    Attributes(b[2]),
		DetachTimeout: time.Duration(binary.LittleEndian.Uint16(b[3:])) * time.Millisecond,
		TransferSize:  int(binary.LittleEndian.Uint16(b[5:])),
		Version:       Version10,
	}
	if b[0] >= 9 {
		f.Version = binary.LittleEndian.Uint16(b[7:])
	}
	return f, nil
}

// Bytes encodes f as the 9-byte descriptor a DFU 1.1 device sends.
func (f Functional) Bytes() []byte {
	b := []byte{FunctionalDescLength, DescFunctional, byte(f.Attributes), 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[3:], uint16(f.DetachTimeout/time.Millisecond))
	binary.LittleEndian.PutUint16(b[5:], uint16(f.TransferSize))
	binary.LittleEndian.PutUint16(b[7:], f.Version)
	return b
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0])
}

// String says what the attributes allow, in words.
func (a Attributes) String() string {
	s := ""
	add := func(w string) {
		if s != "" {
			s += ", "
		}
		s += w
	}
	if a&AttrCanDnload != 0 {
		add("download")
	}
	if a&AttrCanUpload != 0 {
		add("upload")
	}
	if a&AttrManifestationTolerant != 0 {
		add("manifestation tolerant")
	}
	if a&AttrWillDetach != 0 {
		add("will detach")
	}
	if s == "" {
		s = "none"
	}
	return s
}

// VersionString prints a bcdDFUVersion as DFU 1.1, DfuSe or the raw BCD.
func VersionString(v uint16) string {
	switch v {
	case Version11:
		return "DFU 1.1"
	case Version10:
		return "DFU 1.0"
	case VersionDfuSe:
		return "DfuSe (1.1a)"
	}
	return fmt.Sprintf("DFU %x.%02x", v>>8, v&0xff)
}
