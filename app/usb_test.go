package app

import (
	"testing"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/verify"
)

func u16(v uint16) *uint16 { return &v }

func TestBundleUSBHintsNameTheHardwareOfADFUDevice(t *testing.T) {
	v := &verify.Verified{Targets: []verify.Target{
		{Path: "gw.bin", Meta: verify.TargetMeta{HardwareIDs: []string{"acme-gw"}, Protocol: verify.ProtocolHints{Protocols: []string{"smp"}}}},
		{Path: "sensor.dfu", Meta: verify.TargetMeta{HardwareIDs: []string{"acme-sensor"}, Protocol: verify.ProtocolHints{Protocols: []string{"dfu"}, USBVendor: u16(0x2fe3), USBProduct: u16(0x0100)}}},
		{Path: "stm.dfu", Meta: verify.TargetMeta{HardwareIDs: []string{"acme-stm"}, Format: "dfuse"}, Image: &verify.ImageInfo{Format: "dfuse", USBVendor: 0x0483, USBProduct: 0xdf11}},
	}}
	for _, c := range []struct {
		info *dfu.DeviceInfo
		want string
	}{
		{&dfu.DeviceInfo{VendorID: 0x2fe3, ProductID: 0x0100}, "acme-sensor"},
		// Detached into DFU mode with another product id: the run-time ids still match.
		{&dfu.DeviceInfo{VendorID: 0x2fe3, ProductID: 0xffff, RuntimeVendorID: 0x2fe3, RuntimeProductID: 0x0100}, "acme-sensor"},
		{&dfu.DeviceInfo{VendorID: 0x0483, ProductID: 0xdf11}, "acme-stm"},
		{&dfu.DeviceInfo{VendorID: 0x1209, ProductID: 0x0001}, ""},
	} {
		got := usbHardware(v, c.info)
		if (c.want == "" && len(got) != 0) || (c.want != "" && (len(got) != 1 || got[0] != c.want)) {
			t.Errorf("%s: %v, want %q", c.info.ID(), got, c.want)
		}
	}
}

func TestUSBWithoutTheFullBuildSaysSo(t *testing.T) {
	if USBAvailable {
		t.Skip("this build has cgo and libusb")
	}
	_, err := ListUSB(t.Context())
	if err != ErrUSBNeedsFullBuild {
		t.Fatalf("%v", err)
	}
}
