package smp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCRC16IsXMODEM(t *testing.T) {
	// The CRC catalogue's check value for CRC-16/XMODEM.
	if got := CRC16([]byte("123456789")); got != 0x31c3 {
		t.Fatalf("CRC16(123456789) = %#04x, want 0x31c3", got)
	}
}

func splitFrames(b []byte) [][]byte {
	var frames [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		frames = append(frames, b[:i+1])
		b = b[i+1:]
	}
	return frames
}

func TestFramesKeepToBothConventionsAndDecodeEitherWay(t *testing.T) {
	for _, size := range []int{Frame127, Frame128} {
		for _, n := range []int{0, 1, 8, 89, 90, 91, 92, 93, 94, 200, 1000, 2043} {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(i*7 + n)
			}
			pkt := EncodePacket(msg, size)
			if len(pkt) != EncodedLen(n, size) {
				t.Fatalf("size %d, msg %d: EncodedLen %d, EncodePacket wrote %d", size, n, EncodedLen(n, size), len(pkt))
			}
			frames := splitFrames(pkt)
			for i, f := range frames {
				if len(f) > size {
					t.Fatalf("size %d, msg %d: frame %d is %d bytes", size, n, i, len(f))
				}
				if i < len(frames)-1 && len(f) != size {
					t.Fatalf("size %d, msg %d: frame %d is %d bytes, not filled to %d", size, n, i, len(f), size)
				}
				first := f[0] == 0x06 && f[1] == 0x09
				cont := f[0] == 0x04 && f[1] == 0x14
				if (i == 0 && !first) || (i > 0 && !cont) {
					t.Fatalf("size %d, msg %d: frame %d starts % x", size, n, i, f[:2])
				}
			}
			// One decoder takes both conventions, fed a byte at a time.
			var d FrameDecoder
			var got [][]byte
			for _, b := range pkt {
				m, err := d.Write([]byte{b})
				if err != nil {
					t.Fatalf("size %d, msg %d: %v", size, n, err)
				}
				got = append(got, m...)
			}
			if len(got) != 1 || !bytes.Equal(got[0], msg) {
				t.Fatalf("size %d, msg %d: decoded %d messages", size, n, len(got))
			}
		}
	}
}

func TestFrame127MatchesZephyrCut(t *testing.T) {
	// Zephyr's mcumgr_serial_tx_frame puts 93 raw bytes (124 base64 characters) in a
	// frame; the 128 convention fills 125 characters, so its groups straddle frames.
	msg := make([]byte, 200)
	f127 := splitFrames(EncodePacket(msg, Frame127))
	f128 := splitFrames(EncodePacket(msg, Frame128))
	if len(f127[0]) != 127 || (len(f127[0])-3)%4 != 0 {
		t.Fatalf("127 frame of %d bytes", len(f127[0]))
	}
	if len(f128[0]) != 128 {
		t.Fatalf("128 frame of %d bytes", len(f128[0]))
	}
}

func TestDecoderSkipsConsoleOutputAndReportsCorruption(t *testing.T) {
	msg := BuildMessage(Header{Op: OpWrite, Group: GroupOS, ID: OSEcho, Seq: 3}, []byte{0xa1, 0x61, 0x64, 0x62, 0x68, 0x69})
	var d FrameDecoder
	stream := []byte("*** Booting Zephyr OS ***\r\nuart:~$ \n")
	stream = append(stream, EncodePacket(msg, Frame127)...)
	stream = append(stream, "[00:00:01.000] <inf> app: hello\n"...)
	got, err := d.Write(stream)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], msg) {
		t.Fatalf("got %d messages, %v", len(got), err)
	}

	bad := EncodePacket(msg, Frame127)
	bad[5] ^= 0x01 // a base64 character changed: CRC or base64 must catch it
	_, err = d.Write(bad)
	if !errors.Is(err, ErrFrame) {
		t.Fatalf("corrupted packet: %v", err)
	}
	// The decoder goes on with the next packet.
	got, err = d.Write(EncodePacket(msg, Frame128))
	if err != nil || len(got) != 1 {
		t.Fatalf("after corruption: %d messages, %v", len(got), err)
	}
}

func TestDecoderDropsPacketsLargerThanTheBuffer(t *testing.T) {
	d := FrameDecoder{MaxPacket: 256}
	_, err := d.Write(EncodePacket(make([]byte, 300), Frame127))
	if !errors.Is(err, ErrFrame) || !strings.Contains(err.Error(), "256") {
		t.Fatalf("oversized packet: %v", err)
	}
	got, err := d.Write(EncodePacket(make([]byte, 252), Frame127))
	if err != nil || len(got) != 1 {
		t.Fatalf("packet at the limit: %d, %v", len(got), err)
	}
}

func TestHeaderCarriesVersionBits(t *testing.T) {
	h := Header{Op: OpWriteRsp, Version: Version2, Flags: 0, Group: GroupImage, Seq: 0xfe, ID: ImageUpload}
	msg := BuildMessage(h, []byte{0xa0})
	if msg[0] != 0x0b { // op 3 | version 1 << 3
		t.Fatalf("byte 0 = %#02x, want 0x0b", msg[0])
	}
	got, body, err := ParseMessage(msg)
	h.Len = 1
	if err != nil || got != h || len(body) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
}

func FuzzFrameDecoder(f *testing.F) {
	msg := BuildMessage(Header{Op: OpRead, Group: GroupImage, ID: ImageState}, []byte{0xa0})
	f.Add(EncodePacket(msg, Frame127))
	f.Add(EncodePacket(make([]byte, 300), Frame128))
	f.Add([]byte("\x06\x09AAA=\n\x04\x14====\n"))
	f.Add([]byte("log line\n\x06\x09\n\x04\x14AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := FrameDecoder{MaxPacket: 4096}
		msgs, _ := d.Write(data)
		for _, m := range msgs {
			if len(m)+4 > 4096 {
				t.Fatalf("message of %d bytes past the 4096-byte limit", len(m))
			}
			// Whatever decodes must survive a round trip in both conventions.
			for _, size := range []int{Frame127, Frame128} {
				var e FrameDecoder
				back, err := e.Write(EncodePacket(m, size))
				if err != nil || len(back) != 1 || !bytes.Equal(back[0], m) {
					t.Fatalf("round trip of a decoded message failed: %v", err)
				}
			}
		}
	})
}

func FuzzCBORResponses(f *testing.F) {
	for _, v := range []any{
		ImageStateResponse{Images: []SlotState{{Slot: 0, Version: "1.2.3", Hash: make([]byte, 32), Active: true, Confirmed: true}}},
		UploadResponse{Off: new(uint64)},
		ParamsResponse{BufSize: 2048, BufCount: 4},
		InfoResponse{Output: "nrf52840dk"},
		map[string]any{"err": GroupError{Group: 1, RC: 8}},
		map[string]any{"rc": 8, "rsn": "nope"},
	} {
		b, _ := Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f})
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{
			&Status{}, &EchoResponse{}, &ParamsResponse{}, &InfoResponse{}, &BootloaderInfoResponse{},
			&ImageStateResponse{}, &UploadResponse{}, &Empty{},
			// The device side decodes requests from the same bytes.
			&UploadRequest{}, &ImageStateWrite{}, &EchoRequest{}, &InfoRequest{}, &EraseRequest{},
		}
		for _, v := range targets {
			if err := Unmarshal(body, v); err != nil {
				continue
			}
			if st, ok := v.(*ImageStateResponse); ok {
				if len(st.Images) > maxSlots {
					t.Fatalf("%d slots past the limit", len(st.Images))
				}
				for _, s := range st.Images {
					if len(s.Hash) > maxHash {
						t.Fatalf("hash of %d bytes accepted", len(s.Hash))
					}
				}
			}
		}
		_ = decodeResponse("fuzz", GroupImage, ImageUpload, body, &UploadResponse{})
	})
}

func TestDeviceErrorsNameCommandAndMeaning(t *testing.T) {
	v1, _ := Marshal(map[string]int64{"rc": 8})
	err := decodeResponse(CommandName(GroupOS, OSInfo), GroupOS, OSInfo, v1, &InfoResponse{})
	var de *DeviceError
	if !errors.As(err, &de) || !de.NotSupported() || err.Error() != "os info refused: command not supported (rc 8)" {
		t.Fatalf("v1: %v", err)
	}
	v2, _ := Marshal(map[string]any{"err": GroupError{Group: GroupImage, RC: ImgErrHashNotFound}})
	err = decodeResponse(CommandName(GroupImage, ImageState), GroupImage, ImageState, v2, &ImageStateResponse{})
	if !errors.As(err, &de) || de.Generic || err.Error() != "image state refused: no image with that hash (group 1 rc 8); upload the image first" {
		t.Fatalf("v2: %v", err)
	}
	ok, _ := Marshal(map[string]any{"err": GroupError{Group: GroupImage, RC: 0}, "off": 5})
	var up UploadResponse
	if err := decodeResponse("image upload", GroupImage, ImageUpload, ok, &up); err != nil || *up.Off != 5 {
		t.Fatalf("rc 0 in the v2 form is a success: %v", err)
	}
}
