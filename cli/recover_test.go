package cli

import (
	"strings"
	"testing"
)

// The USB recovery itself runs with the real cgo binary in the lab (sim/usblab), against
// the DFU twins behind the kernel's USB stack; these tests run the CGO_ENABLED=0 binary.

func TestRecoverUSBNeedsTheFullBuildAndAWellFormedDevice(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	r := fieldflash(t, home, "", "recover", "--usb", "0483:df11")
	if r.code != exitEnv || !strings.Contains(r.stderr, "USB needs the full build") {
		t.Errorf("recover --usb without cgo: exit %d\n%s", r.code, r.stderr)
	}
	r = fieldflash(t, home, "", "recover", "--usb", "stm32")
	if r.code != exitUsage || !strings.Contains(r.stderr, "VID:PID") {
		t.Errorf("recover --usb stm32: exit %d\n%s", r.code, r.stderr)
	}
	r = fieldflash(t, home, "", "recover", "--usb", "auto", "--port", "/dev/ttyACM0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "the port or the USB device") {
		t.Errorf("recover with both --usb and --port: exit %d\n%s", r.code, r.stderr)
	}
	r = fieldflash(t, home, "", "recover", "--help")
	for _, want := range []string{"--usb", "dfuERROR", "CLRSTATUS", "auto", "--hardware"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("recover --help lacks %q", want)
		}
	}
}
