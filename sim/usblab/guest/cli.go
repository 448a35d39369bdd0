//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/internal/testvendor"
	"github.com/fieldflash/fieldflash/sim/dfudev"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/usblab"
)

// The fieldflash binary itself (the full build: cgo, libusb) against the twins: a bundle
// signed by the test vendor's test-only keys (internal/testvendor), its root pinned with
// `fieldflash trust add` in a $FIELDFLASH_HOME of the lab's own, and the exit codes and
// JSON documents a script sees.

const ffHome = "/tmp/ffhome"

var vendor *testvendor.Vendor

// setupVendor makes the test vendor's repository and bundle and pins its root, once.
func setupVendor() (*testvendor.Vendor, error) {
	if vendor != nil {
		return vendor, nil
	}
	v, err := testvendor.Make("/tmp/vendor", "2.0.0", 2)
	if err != nil {
		return nil, fmt.Errorf("making the test vendor's bundle: %w", err)
	}
	os.MkdirAll(ffHome, 0o700)
	r := ff(context.Background(), "trust", "add", v.RootFile, "--name", testvendor.Repository, "--yes")
	if r.code != 0 {
		return nil, fmt.Errorf("fieldflash trust add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	vendor = v
	return v, nil
}

// ffResult is one fieldflash run: its exit code, output, and the last JSON line of its
// standard output (the result document with --json).
type ffResult struct {
	code           int
	stdout, stderr string
	doc            map[string]any
}

func (r ffResult) String() string {
	return fmt.Sprintf("exit %d\n%s%s", r.code, tail(r.stdout, 30), tail(r.stderr, 10))
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n") + "\n"
}

func ffCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "fieldflash", args...)
	cmd.Env = append(os.Environ(), "FIELDFLASH_HOME="+ffHome)
	return cmd
}

func ff(ctx context.Context, args ...string) ffResult {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := ffCommand(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := ffResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	if err != nil && r.code < 0 {
		r.stderr += err.Error() + "\n"
	}
	r.doc = lastDoc(r.stdout)
	return r
}

func lastDoc(out string) map[string]any {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var doc map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &doc)
	return doc
}

// field reads a nested field of a JSON document: field(doc, "outcome", "result").
func field(doc map[string]any, path ...string) any {
	var v any = doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func init() {
	scenarios = append(scenarios, scenario{name: "cli", run: cliScenarios})
}

// dfuseOpts is the STM32 twin at a fifth of its upstream timing, stalling data block
// stall once (0: none).
func dfuseOpts(stall int) dfudev.Options {
	return dfudev.Options{Profile: dfudev.ProfileSTM32, TimeScale: 0.2, StallBlock: stall}
}

// zephyrRebootOpts is the Zephyr twin in its application (1.0.0), with upload and
// CONFIG_USB_DFU_REBOOT and PERMANENT_DOWNLOAD, at a fifth of its upstream timing.
func zephyrRebootOpts() dfudev.Options {
	return dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, Reboot: true, Permanent: true, Initial: mcubootImage(9000, "1.0.0"), TimeScale: 0.2}
}

// zephyrDFUOpts is that twin started in DFU mode (its bootloader kept it there), stalling
// data block stall once.
func zephyrDFUOpts(stall int) dfudev.Options {
	o := zephyrRebootOpts()
	o.StartInDFU, o.StallBlock = true, stall
	return o
}

func cliScenarios() {
	v, err := setupVendor()
	check("fieldflash trust add pins the test vendor's root (internal/testvendor) for the signed bundle", func() error { return err })
	if err != nil {
		return
	}

	// One DfuSe flash with the binary only: the twin leaves for its application, which
	// does not speak USB, and the engine waits its 10 s (DepartWait) before it counts the
	// device as running the new image.
	dev, g, err := serve(dfuseOpts(0), "0483:df11")
	check("the cable pulled mid-transfer under fieldflash flash BUNDLE --usb 0483:df11 (UDC unbound): it retries, Ctrl-C exits 5 with the journal kept, a run with the cable out exits 4; the rerun resumes at the first page not yet written, reads back, leaves, exits 0", func() error {
		if err != nil {
			return err
		}
		return cablePull(v, dev, g)
	})
	if err == nil {
		unserve(dev, g)
	}

	// A twin left in dfuERROR by an earlier tool: dfu-util's download meets a stalled
	// block. In DFU mode it has the DFU product id, not the one the bundle names, so the
	// hardware id is given as a technician reads it off the label.
	dev, g, err = serve(zephyrDFUOpts(1), "2fe3:ffff")
	check("fieldflash recover --usb auto finds the Zephyr twin left in dfuERROR (errSTALLEDPKT); with the bundle and --hardware it clears it, flashes it, and the twin reboots into the new image", func() error {
		if err != nil {
			return err
		}
		if _, err := dfuUtil("-d", "2fe3:ffff", "-a", "1", "-D", write("/tmp/zraw.bin", pattern(4096, 3))); err == nil {
			return fmt.Errorf("dfu-util's download went through the stalled block")
		}
		r := ff(context.Background(), "recover", "--usb", "auto", "--json")
		if r.code != 0 || r.doc["state"] != "dfu-error" || field(r.doc, "dfu", "state") != "dfuERROR" || field(r.doc, "dfu", "status") != "errSTALLEDPKT" {
			return fmt.Errorf("fieldflash recover --usb auto: %s", r)
		}
		r = ff(context.Background(), "recover", "--usb", "auto", v.Bundle, "--hardware", testvendor.HardwareZephyr, "--json")
		if r.code != 0 || field(r.doc, "outcome", "result") != "installed" {
			return fmt.Errorf("fieldflash recover --usb auto BUNDLE: %s", r)
		}
		if dev.Stats().ClrStatus < 1 {
			return fmt.Errorf("the twin saw no CLRSTATUS: %+v", dev.Stats())
		}
		if info := dev.Flash().Image(flash.Primary); !info.Valid || info.VersionString() != "2.0.0" {
			return fmt.Errorf("the twin runs %+v after the reboot", info)
		}
		if !strings.Contains(r.stdout, "the device answers") {
			return fmt.Errorf("the twin did not come back in its application (run-time mode) after the reboot: %s", r)
		}
		return nil
	})
	if err == nil {
		unserve(dev, g)
	}

	dev, g, err = serve(zephyrRebootOpts(), "2fe3:0100")
	check("fieldflash devices --json lists the Zephyr twin in run-time mode: ids, serial, DFU 1.1, will-detach, detach timeout, transfer size", func() error {
		if err != nil {
			return err
		}
		r := ff(context.Background(), "devices", "--json")
		var doc struct {
			USB []struct {
				Info dfu.DeviceInfo `json:"info"`
			} `json:"usb_dfu"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || len(doc.USB) != 1 {
			return fmt.Errorf("fieldflash devices --json (%v): %s", err, r)
		}
		i := doc.USB[0].Info
		f := i.Functional
		if i.VendorID != 0x2fe3 || i.ProductID != 0x0100 || !i.Runtime() || i.Serial != "0123456789ABCDEF" || f.Attributes&dfu.AttrWillDetach == 0 ||
			f.DetachTimeout != 100*time.Millisecond || f.TransferSize != 1024 || f.Version != dfu.Version11 {
			return fmt.Errorf("fieldflash devices --json: %s", r)
		}
		return nil
	})
	check("fieldflash flash BUNDLE --usb 2fe3:0100 detaches the Zephyr run-time twin, downloads, and the twin reboots into the new image: exit 0", func() error {
		if err != nil {
			return err
		}
		r := ff(context.Background(), "flash", v.Bundle, "--usb", "2fe3:0100", "--json")
		if r.code != 0 || field(r.doc, "outcome", "result") != "installed" {
			return fmt.Errorf("fieldflash flash: %s", r)
		}
		if st := dev.Stats(); st.Detaches != 1 {
			return fmt.Errorf("the twin saw %+v", st)
		}
		if info := dev.Flash().Image(flash.Primary); !info.Valid || info.VersionString() != "2.0.0" {
			return fmt.Errorf("the twin runs %+v after the reboot", info)
		}
		if !strings.Contains(r.stdout, "relying on the device's own check") {
			return fmt.Errorf("no word on the check: %s", r)
		}
		return nil
	})
	if err == nil {
		unserve(dev, g)
	}
}

// cablePull runs fieldflash flash on the DfuSe twin, pulls the cable (unbinds the UDC)
// after 30000 bytes, interrupts the run once it retries, and reruns it with the cable back.
func cablePull(v *testvendor.Vendor, dev *dfudev.Device, g *usblab.DFUGadget) error {
	journal := filepath.Join(ffHome, "journal")
	os.RemoveAll(journal)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := ffCommand(ctx, "flash", v.Bundle, "--usb", "0483:df11", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		for dev.Stats().DataBytes < 30000 && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		g.Unplug()
	}()
	var lines []string
	retried := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["kind"] == "retry" && !retried {
			retried = true
			cmd.Process.Signal(syscall.SIGINT) // Ctrl-C while it waits for the device
		}
	}
	cmd.Wait()
	first := ffResult{code: cmd.ProcessState.ExitCode(), stdout: strings.Join(lines, "\n") + "\n", stderr: errOut.String()}
	first.doc = lastDoc(first.stdout)
	if !retried || first.code != 5 || field(first.doc, "outcome", "result") != "interrupted" || field(first.doc, "outcome", "step") != "transfer" {
		return fmt.Errorf("the run with the cable out (retried %v): %s", retried, first)
	}
	if j, _ := os.ReadDir(journal); len(j) == 0 {
		return fmt.Errorf("no journal under %s after the interrupted run", journal)
	}
	// Run again with the cable still out: nothing on the bus is exit 4, with what to check.
	r := ff(context.Background(), "flash", v.Bundle, "--usb", "0483:df11", "--json")
	if r.code != 4 || r.doc["code"] != "device-lost" || !strings.Contains(fmt.Sprint(r.doc["next"]), "fieldflash recover --usb 0483:df11") {
		return fmt.Errorf("a run with the cable out: %s", r)
	}
	if j, _ := os.ReadDir(journal); len(j) == 0 {
		return fmt.Errorf("the journal under %s is gone after a run that found no device", journal)
	}
	sent := dev.Stats().DataBytes
	dev.EnterBootloader() // power comes back with BOOT0 held
	g.Replug()
	if err := waitHost("0483:df11", 10*time.Second); err != nil {
		return err
	}
	// The rerun picks the device by the bundle (the DFU file's suffix names 0483:df11).
	r = ff(context.Background(), "flash", v.Bundle, "--usb", "auto", "--json")
	if r.code != 0 || field(r.doc, "outcome", "result") != "installed" {
		return fmt.Errorf("the rerun with --usb auto: %s", r)
	}
	from, _ := field(r.doc, "outcome", "resumed_from").(float64)
	if from < 16384 {
		return fmt.Errorf("the rerun resumed from %v, want at least 16384 (the first 16 KiB page was written whole): %s", from, r)
	}
	if resent := dev.Stats().DataBytes - sent; resent > 49000-16384 {
		return fmt.Errorf("the rerun sent %d bytes, more than the %d after the first page", resent, 49000-16384)
	}
	if err := memEqual(dev, testvendor.STM32Address0, v.STM32Elements[0]); err != nil {
		return err
	}
	if err := memEqual(dev, testvendor.STM32Address1, v.STM32Elements[1]); err != nil {
		return err
	}
	if !strings.Contains(r.stdout, "read back") || !dev.Left() {
		return fmt.Errorf("no read-back or no leave: %s", r)
	}
	return nil
}
