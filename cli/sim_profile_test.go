//go:build unix

package cli

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/transports/serial"
)

// `fieldflash sim --profile mcuboot --part nrf52840` is a board in stock MCUboot serial
// recovery: over its port, echo is "not supported" (rc 8), as
// boot_serial.c answers with its defaults.
func TestSimProfileAnswersAsUpstream(t *testing.T) {
	out, err := exec.Command(binary, "sim", "--list-profiles").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "zephyr-tuned") || !strings.Contains(string(out), "nrf52840") {
		t.Fatalf("sim --list-profiles: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "sim", "--profile", "nope").CombinedOutput(); err == nil {
		t.Fatalf("an unknown profile was taken:\n%s", out)
	}
	s := startSimProcess(t, t.TempDir(), "--profile", "mcuboot", "--part", "nrf52840")
	p, err := serial.Open(s.port, 115200)
	if err != nil {
		t.Fatal(err)
	}
	p.SetReadTimeout(20 * time.Millisecond)
	d := smp.New(p, smp.Options{Timeout: time.Second, Retries: 2})
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var de *smp.DeviceError
	if _, err := d.Echo(ctx, "hello"); !errors.As(err, &de) || !de.NotSupported() {
		t.Fatalf("echo on stock MCUboot serial recovery: %v, want rc 8 (not supported)", err)
	}
}
