//go:build cgo && linux

package main

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"os/exec"
)

// captureWindow takes a screenshot of an X window the way a person's screenshot tool
// does, from the X server (xwd), not from the app: what it shows is what was drawn.
func captureWindow(display, wid string) (*image.RGBA, error) {
	cmd := exec.Command("xwd", "-silent", "-id", wid)
	cmd.Env = []string{"DISPLAY=" + display}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("xwd: %v", err)
	}
	return decodeXWD(out)
}

// captureRoot takes the whole screen.
func captureRoot(display string) (*image.RGBA, error) {
	cmd := exec.Command("xwd", "-silent", "-root")
	cmd.Env = []string{"DISPLAY=" + display}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("xwd: %v", err)
	}
	return decodeXWD(out)
}

// decodeXWD reads X Window Dump files of the kind xwd writes for a TrueColor screen:
// ZPixmap, 24-bit depth in 32-bit pixels (the X11 XWDFileHeader, version 7).
func decodeXWD(b []byte) (*image.RGBA, error) {
	if len(b) < 100 {
		return nil, fmt.Errorf("xwd: %d bytes, too short for a header", len(b))
	}
	h := func(i int) uint32 { return binary.BigEndian.Uint32(b[i*4:]) }
	headerSize, version, format := h(0), h(1), h(2)
	w, ht := int(h(4)), int(h(5))
	byteOrder, bpp, bpl := h(7), h(11), int(h(12))
	rmask, gmask, bmask := h(14), h(15), h(16)
	ncolors := int(h(19))
	if version != 7 || format != 2 || (bpp != 32 && bpp != 24) {
		return nil, fmt.Errorf("xwd: version %d format %d %d bpp: only ZPixmap 24 and 32 bpp are read", version, format, bpp)
	}
	px := int(bpp / 8)
	off := int(headerSize) + ncolors*12
	if off+bpl*ht > len(b) || w*px > bpl {
		return nil, fmt.Errorf("xwd: %dx%d image does not fit %d bytes", w, ht, len(b))
	}
	shift := func(m uint32) uint {
		s := uint(0)
		for m != 0 && m&1 == 0 {
			m >>= 1
			s++
		}
		return s
	}
	rs, gs, bs := shift(rmask), shift(gmask), shift(bmask)
	img := image.NewRGBA(image.Rect(0, 0, w, ht))
	for y := 0; y < ht; y++ {
		row := b[off+y*bpl:]
		for x := 0; x < w; x++ {
			var p uint32
			q := row[x*px : x*px+px]
			for i := range px {
				if byteOrder == 0 { // LSBFirst
					p |= uint32(q[i]) << (8 * i)
				} else {
					p = p<<8 | uint32(q[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{uint8((p & rmask) >> rs), uint8((p & gmask) >> gs), uint8((p & bmask) >> bs), 255})
		}
	}
	return img, nil
}

// drawn says whether an image shows a drawn window rather than a blank one: enough
// distinct colours (text is anti-aliased) and enough pixels off the most common one.
func drawn(img *image.RGBA) (ok bool, colors int, offBackground float64) {
	counts := map[color.RGBA]int{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			counts[img.RGBAAt(x, y)]++
		}
	}
	top, total := 0, 0
	for _, n := range counts {
		total += n
		top = max(top, n)
	}
	if total == 0 {
		return false, 0, 0
	}
	off := 1 - float64(top)/float64(total)
	return len(counts) >= 32 && off >= 0.02, len(counts), off
}
