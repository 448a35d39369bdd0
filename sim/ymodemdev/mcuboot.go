package ymodemdev

import (
	"io"

	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// MCUbootInspect is an Inspect for devices whose applications are MCUboot images: the
// header and TLVs must parse and the image hash must match, as MCUboot itself checks
// before it boots an image. It reports the image version and its security counter.
func MCUbootInspect(image io.ReaderAt, size int64) (Info, error) {
	img, err := mcuboot.Parse(image, size)
	if err != nil {
		return Info{}, err
	}
	if err := img.VerifyHash(image); err != nil {
		return Info{}, err
	}
	info := Info{Version: img.Version.String()}
	if img.SecurityCounter != nil {
		info.Counter = uint64(*img.SecurityCounter)
	}
	return info, nil
}
