package smp

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// The CBOR bodies of the commands this package speaks, with the key names Zephyr's
// mcumgr and MCUboot use. Pointers mark keys that are sent only in some forms.

// Status carries the error forms every response may hold: SMP v1 {"rc": N} and
// SMP v2 {"err": {"group": G, "rc": N}}. "rsn" is Zephyr's optional reason text.
type Status struct {
	RC  *int64      `cbor:"rc,omitempty"`
	Err *GroupError `cbor:"err,omitempty"`
	RSN string      `cbor:"rsn,omitempty"`
}

// GroupError is the SMP v2 error: a group-specific rc.
type GroupError struct {
	Group uint16 `cbor:"group"`
	RC    int64  `cbor:"rc"`
}

// EchoRequest is os echo.
type EchoRequest struct {
	D string `cbor:"d"`
}

// EchoResponse answers os echo.
type EchoResponse struct {
	Status
	R string `cbor:"r"`
}

// ParamsResponse answers os mcumgr params: the size of the device's receive buffer and
// how many it has.
type ParamsResponse struct {
	Status
	BufSize  uint32 `cbor:"buf_size"`
	BufCount uint32 `cbor:"buf_count"`
}

// InfoRequest is os application info; Format holds uname-like letters.
type InfoRequest struct {
	Format string `cbor:"format,omitempty"`
}

// InfoResponse answers os application info.
type InfoResponse struct {
	Status
	Output string `cbor:"output"`
}

// BootloaderInfoRequest is os bootloader info; an empty query asks for the name.
type BootloaderInfoRequest struct {
	Query string `cbor:"query,omitempty"`
}

// BootloaderInfoResponse answers os bootloader info.
type BootloaderInfoResponse struct {
	Status
	Bootloader string `cbor:"bootloader,omitempty"`
	Mode       *int64 `cbor:"mode,omitempty"`
}

// ResetRequest is os reset.
type ResetRequest struct {
	Force *bool `cbor:"force,omitempty"`
}

// ImageStateWrite is image state write: test the image with Hash (Confirm false), or
// make an image permanent (Confirm true; no Hash means the running image).
type ImageStateWrite struct {
	Hash    []byte `cbor:"hash,omitempty"`
	Confirm bool   `cbor:"confirm"`
}

// ImageStateResponse answers image state read and write.
type ImageStateResponse struct {
	Status
	Images      []SlotState `cbor:"images"`
	SplitStatus int64       `cbor:"splitStatus,omitempty"`
}

// SlotState is one slot in an image state response.
type SlotState struct {
	Image     uint32 `cbor:"image"`
	Slot      uint32 `cbor:"slot"`
	Version   string `cbor:"version"`
	Hash      []byte `cbor:"hash,omitempty"`
	Bootable  bool   `cbor:"bootable,omitempty"`
	Pending   bool   `cbor:"pending,omitempty"`
	Confirmed bool   `cbor:"confirmed,omitempty"`
	Active    bool   `cbor:"active,omitempty"`
	Permanent bool   `cbor:"permanent,omitempty"`
}

// UploadRequest is image upload. The first chunk (Off 0) carries Len and SHA (SHA-256 of
// the whole upload, which names the upload so it can be resumed).
type UploadRequest struct {
	Image   *uint32 `cbor:"image,omitempty"`
	Len     *uint64 `cbor:"len,omitempty"`
	Off     uint64  `cbor:"off"`
	SHA     []byte  `cbor:"sha,omitempty"`
	Data    []byte  `cbor:"data"`
	Upgrade *bool   `cbor:"upgrade,omitempty"`
}

// UploadResponse answers image upload: the offset the device expects next.
type UploadResponse struct {
	Status
	Off   *uint64 `cbor:"off,omitempty"`
	Match *bool   `cbor:"match,omitempty"`
}

// EraseRequest is image erase; no Slot means the secondary slot.
type EraseRequest struct {
	Slot *uint32 `cbor:"slot,omitempty"`
}

// Empty is a response with nothing but a status (reset, erase).
type Empty struct {
	Status
}

// Hash and field bounds: a device's response larger than these is not one this package
// believes.
const (
	maxHash    = 64
	maxText    = 1024
	maxSlots   = 64
	cborLevels = 6
)

var (
	decMode cbor.DecMode
	encMode cbor.EncMode
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  cborLevels,
		MaxArrayElements: maxSlots,
		MaxMapPairs:      32,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	// Zephyr and MCUboot read definite lengths; keep keys sorted as a courtesy for
	// byte-for-byte comparable logs.
	encMode, err = cbor.EncOptions{Sort: cbor.SortLengthFirst}.EncMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes a request or response body.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes a body with this package's limits (nesting, array and map sizes; the
// frame decoder already bounds the whole packet) and then bounds the strings it kept.
func Unmarshal(body []byte, v any) error {
	if err := decMode.Unmarshal(body, v); err != nil {
		return err
	}
	return checkBounds(v)
}

func checkBounds(v any) error {
	switch r := v.(type) {
	case *ImageStateResponse:
		for _, s := range r.Images {
			if len(s.Hash) > maxHash {
				return fmt.Errorf("image %d slot %d: hash of %d bytes", s.Image, s.Slot, len(s.Hash))
			}
			if len(s.Version) > 64 {
				return fmt.Errorf("image %d slot %d: version of %d bytes", s.Image, s.Slot, len(s.Version))
			}
		}
	case *InfoResponse:
		if len(r.Output) > maxText {
			return fmt.Errorf("os info output of %d bytes", len(r.Output))
		}
	case *ImageStateWrite:
		if len(r.Hash) > maxHash {
			return fmt.Errorf("hash of %d bytes", len(r.Hash))
		}
	case *UploadRequest:
		if len(r.SHA) > maxHash {
			return fmt.Errorf("sha of %d bytes", len(r.SHA))
		}
	}
	return nil
}
