package dfu

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLayoutOfAnSTM32F4ReadsAsSectors(t *testing.T) {
	l, err := ParseLayout("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg")
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "Internal Flash" || len(l.Sectors) != 12 {
		t.Fatalf("name %q, %d sectors", l.Name, len(l.Sectors))
	}
	want := []Sector{{0x08000000, 16 << 10, 7}, {0x08004000, 16 << 10, 7}, {0x0800c000, 16 << 10, 7}, {0x08010000, 64 << 10, 7}, {0x08020000, 128 << 10, 7}}
	for _, w := range want {
		s, ok := l.Sector(w.Start + 5)
		if !ok || s != w {
			t.Errorf("sector at 0x%08x: %+v, want %+v", w.Start+5, s, w)
		}
	}
	if l.Sectors[11].End() != 0x08100000 {
		t.Errorf("flash ends at 0x%x, want 0x08100000 (1 MiB)", l.Sectors[11].End())
	}
	secs, err := l.Covering(0x08003000, 0x2000)
	if err != nil || len(secs) != 2 || secs[0].Start != 0x08000000 || secs[1].Start != 0x08004000 {
		t.Fatalf("covering: %v %v", secs, err)
	}
	if _, err := l.Covering(0x080ff000, 0x2000); err == nil || !strings.Contains(err.Error(), "0x08100000") {
		t.Fatalf("past the end: %v", err)
	}
	if !strings.Contains(l.String(), "4×16 KiB rew") {
		t.Errorf("String: %s", l)
	}
}

func TestLayoutsWithBytesUnitsAndSeveralGroups(t *testing.T) {
	for _, c := range []struct {
		in    string
		n     int
		first Sector
	}{
		{"@Option Bytes  /0x1FFFC000/01*016 e", 1, Sector{0x1fffc000, 16, Readable | Writable}},
		{"@OTP Memory /0x1FFF7800/01*512 e,01*016 e", 2, Sector{0x1fff7800, 512, 5}},
		{"@Flash/0x08000000/02*001Ka/0x08001000/04*001Kg", 6, Sector{0x08000000, 1024, Readable}},
		{"@SPI /0x90000000/1*1Mg", 1, Sector{0x90000000, 1 << 20, 7}},
	} {
		l, err := ParseLayout(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if len(l.Sectors) != c.n || l.Sectors[0] != c.first {
			t.Errorf("%q: %d sectors, first %+v; want %d, %+v", c.in, len(l.Sectors), l.Sectors[0], c.n, c.first)
		}
	}
	for _, bad := range []string{"Internal Flash", "@x", "@x/0x0/", "@x/08000000/1*1Kg", "@x/0x0/1*1Kz", "@x/0x0/0*1Kg", "@x/0xffffffff/2*1Kg", "@x/0x0/99999999*1Kg"} {
		if _, err := ParseLayout(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFunctionalDescriptorRoundTrips(t *testing.T) {
	f := Functional{Attributes: AttrCanDnload | AttrCanUpload | AttrWillDetach, DetachTimeout: 255 * time.Millisecond, TransferSize: 2048, Version: VersionDfuSe}
	g, err := ParseFunctional(f.Bytes())
	if err != nil || g != f {
		t.Fatalf("%+v %v", g, err)
	}
	// A DFU 1.0 device sends 7 bytes.
	old, err := ParseFunctional([]byte{7, 0x21, 0x01, 0xe8, 0x03, 0x00, 0x04})
	if err != nil || old.Version != Version10 || old.TransferSize != 1024 || old.DetachTimeout != time.Second {
		t.Fatalf("%+v %v", old, err)
	}
	if _, err := ParseFunctional([]byte{9, 0x24, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("wrong type accepted")
	}
	if f.Attributes.String() != "download, upload, will detach" {
		t.Error(f.Attributes.String())
	}
}

func TestStatusReplyCarriesTheTwentyFourBitPollTimeout(t *testing.T) {
	r := StatusReply{Status: StatusErrWrite, PollTimeout: 0x123456 * time.Millisecond, State: StateError, IString: 3}
	got, err := ParseStatus(r.Bytes())
	if err != nil || got != r {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ParseStatus([]byte{0, 1, 2}); err == nil {
		t.Error("short reply accepted")
	}
}

func TestEveryStatusAndStateHasWordsAndANextStep(t *testing.T) {
	for s := StatusOK; s <= StatusErrStalledPkt; s++ {
		if s.Meaning() == "" || (s != StatusOK && s.Next() == "") || strings.HasPrefix(s.String(), "status") {
			t.Errorf("status %d: %q %q %q", s, s, s.Meaning(), s.Next())
		}
	}
	for st := StateAppIdle; st <= StateError; st++ {
		if st.Meaning() == "" || strings.HasPrefix(st.String(), "state") {
			t.Errorf("state %d: %q %q", st, st, st.Meaning())
		}
	}
	if Status(0x42).Next() == "" || State(0x42).Meaning() == "" {
		t.Error("unknown codes need words too")
	}
}

// zephyrConfig is the configuration descriptor of Zephyr's DFU mode: one interface, two
// alternate settings, one functional descriptor after the last.
func zephyrConfig() []byte {
	b := []byte{9, 2, 0, 0, 1, 1, 0, 0x80, 50,
		9, 4, 0, 0, 0, 0xfe, 1, 2, 4,
		9, 4, 0, 1, 0, 0xfe, 1, 2, 5}
	b = append(b, Functional{Attributes: 5, DetachTimeout: 100 * time.Millisecond, TransferSize: 1024, Version: Version11}.Bytes()...)
	b[2] = byte(len(b))
	return b
}

func TestConfigDescriptorGivesEveryAltTheFunctionalDescriptor(t *testing.T) {
	c, err := ParseConfig(zephyrConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Interfaces) != 2 || c.Interfaces[0].Functional == nil || c.Interfaces[0].Functional.TransferSize != 1024 {
		t.Fatalf("%+v", c)
	}
	var d DeviceInfo
	names := map[uint8]string{4: "image_0", 5: "image_1"}
	if !InfoFromConfig(&d, c, func(i uint8) string { return names[i] }) {
		t.Fatal("no DFU interface")
	}
	if len(d.Alts) != 2 || d.Alts[1].Name != "image_1" || d.Protocol != ProtocolDFUMode || d.Runtime() || d.DfuSe() {
		t.Fatalf("%+v", d)
	}
	if _, err := ParseConfig(zephyrConfig()[:20]); err == nil {
		t.Error("truncated configuration accepted")
	}
}

func TestStringDescriptorsAreEscapedForTheTerminal(t *testing.T) {
	s, err := DecodeString([]byte{12, 3, 'S', 0, 'N', 0, 0x1b, 0, '[', 0, '2', 0})
	if err != nil {
		t.Fatal(err)
	}
	if p := Printable(s); p != `SN\x1b[2` {
		t.Fatalf("%q", p)
	}
}

func FuzzParseFunctional(f *testing.F) {
	f.Add(Functional{Attributes: 0x0b, TransferSize: 2048, Version: VersionDfuSe}.Bytes())
	f.Add([]byte{7, 0x21, 1, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		fd, err := ParseFunctional(b)
		if err != nil {
			return
		}
		if len(b) >= 9 && b[0] >= 9 {
			g, err := ParseFunctional(fd.Bytes())
			if err != nil || g != fd {
				t.Fatalf("round trip %+v -> %+v %v", fd, g, err)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add(zephyrConfig())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		var d DeviceInfo
		InfoFromConfig(&d, c, func(uint8) string { return "@x/0x0/1*1Kg" })
		_ = d.String()
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte{0, 8, 0, 0, 5, 0})
	f.Add([]byte{0x0f, 0xff, 0xff, 0xff, 10, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseStatus(b)
		if err != nil {
			return
		}
		_ = r.Status.Meaning() + r.Status.Next() + r.State.Meaning() + r.State.String()
		if !bytes.Equal(r.Bytes(), b[:StatusReplyLength]) {
			t.Fatalf("% x -> %+v -> % x", b[:6], r, r.Bytes())
		}
	})
}

func FuzzParseLayout(f *testing.F) {
	f.Add("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg")
	f.Add("@Option Bytes  /0x1FFFC000/01*016 e")
	f.Add("@OTP Memory /0x1FFF7800/01*512 e,01*016 e")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLayout(s)
		if err != nil {
			return
		}
		_ = l.String()
		var prev uint64
		for i, sec := range l.Sectors {
			if sec.Size == 0 || sec.End() > 1<<32 {
				t.Fatalf("sector %d: %+v", i, sec)
			}
			if got, ok := l.Sector(sec.Start); !ok || (got.Start != sec.Start && uint64(got.Start) > prev) {
				t.Fatalf("sector %d at 0x%x not found", i, sec.Start)
			}
			prev = sec.End()
		}
	})
}

func TestUSBDeviceIsGivenAsVIDPIDAndSerial(t *testing.T) {
	m, err := ParseMatch("0483:DF11,325A36713137")
	if err != nil || m.VendorID != 0x0483 || m.ProductID != 0xdf11 || m.Serial != "325A36713137" {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"0483", "0483:df11x", "12345:1", "zz:1", "0483:df11@"} {
		if _, err := ParseMatch(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A device without a serial number is named by its port; Spec writes what ParseMatch reads.
	m, err = ParseMatch("2fe3:ffff@1-2.4")
	if err != nil || m.ProductID != 0xffff || m.Port != "1-2.4" || m.Serial != "" {
		t.Fatalf("%+v %v", m, err)
	}
	for _, s := range []string{"2fe3:ffff@1-2.4", "0483:df11,325A36713137", "0483:df11,a@b"} {
		m, err := ParseMatch(s)
		if err != nil || m.Spec() != s {
			t.Errorf("%q read as %+v (%v), written back as %q", s, m, err, m.Spec())
		}
	}
	if m, _ := ParseMatch("0483:df11,a@b"); m.Serial != "a@b" {
		t.Errorf("a serial with @ that is not a port: %+v", m)
	}
}
