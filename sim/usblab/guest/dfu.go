//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/dfu"
	"github.com/fieldflash/fieldflash/sim/dfudev"
	"github.com/fieldflash/fieldflash/sim/flash"
	"github.com/fieldflash/fieldflash/sim/usblab"
	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/dfufile"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

var gadgets int

// serve makes a twin with opt and plugs it in as a gadget; the host enumerates it as id.
func serve(opt dfudev.Options, id string) (*dfudev.Device, *usblab.DFUGadget, error) {
	gadgets++
	watch := time.AfterFunc(30*time.Second, func() { logf("serving %s takes over 30 s", id); dumpGoroutines() })
	defer watch.Stop()
	dev, err := dfudev.New(fmt.Sprintf("/tmp/flash%d.bin", gadgets), opt)
	if err != nil {
		return nil, nil, err
	}
	g, err := usblab.ServeDFU(dev, fmt.Sprintf("g%d", gadgets))
	if err != nil {
		dev.Close()
		return nil, nil, err
	}
	g.Log = logf
	if debug {
		g.Trace = func(s string) { fmt.Println("usblab: trace", s) }
	}
	if err := waitHost(id, 10*time.Second); err != nil {
		g.Close()
		dev.Close()
		return nil, nil, err
	}
	return dev, g, nil
}

func unserve(dev *dfudev.Device, g *usblab.DFUGadget) {
	g.Close()
	dev.Close()
	time.Sleep(100 * time.Millisecond)
}

func dfuUtil(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dfu-util", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("dfu-util %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed ^ byte(i>>7)
	}
	return b
}

func write(path string, b []byte) string {
	os.WriteFile(path, b, 0o644)
	return path
}

// bundle writes payload into a bundle-like file and returns the verdict verify gives for a
// target with these hints. (Signing is tested elsewhere; here the USB path is.)
func bundle(name string, payload []byte, meta verify.TargetMeta) *verify.Verified {
	head := bytes.Repeat([]byte("metadata"), 40)
	path := filepath.Join("/tmp", name+".fwb")
	os.WriteFile(path, append(append(head, payload...), head...), 0o600)
	sum := sha256.Sum256(payload)
	if meta.Version == "" {
		meta.Version = "2.0.0"
	}
	meta.HardwareIDs = []string{"acme-dfu"}
	meta.Component = "app"
	meta.Protocol.Protocols = []string{"dfu"}
	return &verify.Verified{Bundle: path, Targets: []verify.Target{{
		Path: name, Length: int64(len(payload)), SHA256: hex.EncodeToString(sum[:]), Offset: int64(len(head)), Meta: meta,
	}}}
}

// flashUSB runs the engine against the USB device m, as fieldflash flash --usb does.
func flashUSB(ctx context.Context, m dfu.Match, v *verify.Verified, j *flasher.Journal, events func(flasher.Event)) (*flasher.Outcome, error) {
	c, err := dfu.OpenUSB(ctx, m)
	if err != nil {
		return nil, err
	}
	reopen := dfu.ReopenUSB(c.Info())
	d := dfu.New(c, dfu.Options{Reopen: reopen})
	id, err := d.Identify(ctx)
	if err != nil {
		d.Close()
		return nil, err
	}
	p, err := flasher.NewPlan(v, "", id, flasher.PlanOptions{HardwareID: "acme-dfu", Device: "acme-dfu/" + c.Info().Serial, Port: "usb " + c.Info().Path,
		Reconnect: func(ctx context.Context) (flasher.Driver, error) {
			c, err := reopen(ctx)
			if err != nil {
				return nil, err
			}
			return dfu.New(c, dfu.Options{Reopen: reopen}), nil
		},
		DepartWait: 2 * time.Second,
		Retry:      flasher.RetryPolicy{Initial: 200 * time.Millisecond, Max: time.Second},
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	defer p.Close()
	return flasher.Run(ctx, p, d, j, events)
}

type eventLog struct{ lines []string }

func (l *eventLog) event(e flasher.Event) {
	if e.Message != "" {
		l.lines = append(l.lines, string(e.Step)+": "+e.Message)
	}
}
func (l *eventLog) String() string { return strings.Join(l.lines, "\n") }
func (l *eventLog) has(s string) bool {
	return strings.Contains(strings.ToLower(l.String()), strings.ToLower(s))
}

func mcubootImage(n int, version string) []byte {
	v, _ := mcuboot.ParseVersion(version)
	img, err := mcuboot.Build(pattern(n, 0x5a), mcuboot.BuildOptions{Version: v})
	if err != nil {
		panic(err)
	}
	return img
}

func memEqual(dev *dfudev.Device, addr uint32, want []byte) error {
	got, err := dev.Memory(addr, len(want))
	if err != nil {
		return err
	}
	if i := firstDiff(got, want); i >= 0 {
		return fmt.Errorf("device memory differs from the image at 0x%08x", addr+uint32(i))
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return len(a)
	}
	return -1
}

var stm32 = dfu.Match{VendorID: 0x0483, ProductID: 0xdf11}

func init() {
	scenarios = append(scenarios, scenario{name: "dfuse", run: dfuseScenarios}, scenario{name: "zephyr", run: zephyrScenarios})
}

func dfuseScenarios() {
	dev, g, err := serve(dfudev.Options{Profile: dfudev.ProfileSTM32, TimeScale: 0.2}, "0483:df11")
	check("the STM32 DfuSe twin enumerates as a USB gadget through FunctionFS", func() error { return err })
	if err != nil {
		return
	}
	check("dfu-util lists the DfuSe twin with its memory layouts", func() error {
		out, err := dfuUtil("-l")
		if err != nil {
			return err
		}
		for _, want := range []string{"[0483:df11]", `name="@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg"`, `alt=1`, `name="@Option Bytes  /0x1FFFC000/01*016 e"`, `serial="325A36713137"`} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("dfu-util -l lacks %s:\n%s", want, out)
			}
		}
		return nil
	})
	check("fieldflash devices lists the DfuSe twin: ids, serial, DFU version, transfer size, parsed memory layouts", func() error {
		out, err := exec.Command("fieldflash", "devices", "--json").Output()
		if err != nil {
			return fmt.Errorf("fieldflash devices --json: %v\n%s", err, out)
		}
		var doc struct {
			USB []struct {
				Info dfu.DeviceInfo `json:"info"`
			} `json:"usb_dfu"`
			Err string `json:"usb_error"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			return fmt.Errorf("%v:\n%s", err, out)
		}
		if len(doc.USB) != 1 {
			return fmt.Errorf("%d USB DFU devices (%s):\n%s", len(doc.USB), doc.Err, out)
		}
		i := doc.USB[0].Info
		if i.VendorID != 0x0483 || i.ProductID != 0xdf11 || i.Serial != "325A36713137" || i.Functional.TransferSize != 2048 || i.Functional.Version != dfu.VersionDfuSe ||
			len(i.Alts) != 3 || i.Alts[0].Layout == nil || len(i.Alts[0].Layout.Sectors) != 12 || i.Alts[1].Layout.Sectors[0].Start != 0x1fffc000 {
			return fmt.Errorf("fieldflash devices --json:\n%s", out)
		}
		text, _ := exec.Command("fieldflash", "devices").Output()
		if !strings.Contains(string(text), "memory: Internal Flash 0x08000000: 4×16 KiB rew, 1×64 KiB rew, 7×128 KiB rew") {
			return fmt.Errorf("fieldflash devices:\n%s", text)
		}
		return nil
	})
	raw := pattern(40000, 7)
	check("dfu-util downloads to the DfuSe twin and uploads the same bytes back", func() error {
		if _, err := dfuUtil("-a", "0", "-s", "0x08000000", "-D", write("/tmp/raw.bin", raw)); err != nil {
			return err
		}
		if err := memEqual(dev, 0x08000000, raw); err != nil {
			return err
		}
		os.Remove("/tmp/up.bin")
		if _, err := dfuUtil("-a", "0", "-s", "0x08000000:40000", "-U", "/tmp/up.bin"); err != nil {
			return err
		}
		up, _ := os.ReadFile("/tmp/up.bin")
		if !bytes.Equal(up, raw) {
			return fmt.Errorf("upload of %d bytes differs from the download", len(up))
		}
		return nil
	})
	check("dfu-util writes each element of a DfuSe file (testdata/dfu/dfuse-2elements.dfu) at its address", func() error {
		if _, err := dfuUtil("-a", "0", "-D", "/lab/dfu/dfuse-2elements.dfu"); err != nil {
			return err
		}
		e0, _ := os.ReadFile("/lab/dfu/input/element0-4096.raw")
		e1, _ := os.ReadFile("/lab/dfu/input/element1-2500.raw")
		if err := memEqual(dev, 0x08000000, e0); err != nil {
			return err
		}
		return memEqual(dev, 0x08010000, e1)
	})
	check("dfu-util -s 0x08000000:leave makes the twin jump to its application and leave the bus", func() error {
		if _, err := dfuUtil("-a", "0", "-s", "0x08000000:leave", "-D", "/tmp/raw.bin"); err != nil {
			return err
		}
		if err := waitGone("0483:df11", 5*time.Second); err != nil {
			return err
		}
		if !dev.Left() {
			return fmt.Errorf("the twin did not leave")
		}
		return memEqual(dev, 0x08000000, raw)
	})
	dev.EnterBootloader()
	waitHost("0483:df11", 10*time.Second)

	file, els := dfuseFile()
	check("fieldflash flashes a DfuSe file: erases the covered pages, writes each element, reads back, leaves", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var ev eventLog
		before := dev.Stats().Erases
		out, err := flashUSB(ctx, stm32, bundle("dfuse", file, verify.TargetMeta{Format: "dfuse"}), nil, ev.event)
		if err != nil {
			return fmt.Errorf("%v\n%s", err, ev.String())
		}
		if out.Result != flasher.ResultInstalled {
			return fmt.Errorf("result %s", out.Result)
		}
		if n := dev.Stats().Erases - before; n != 4 {
			return fmt.Errorf("%d pages erased, want 4 (three 16 KiB and one 64 KiB)", n)
		}
		if err := memEqual(dev, 0x08000000, els[0]); err != nil {
			return err
		}
		if err := memEqual(dev, 0x08010000, els[1]); err != nil {
			return err
		}
		if !ev.has("read back all 49000 bytes") || !dev.Left() {
			return fmt.Errorf("no read-back or no leave:\n%s", ev.String())
		}
		return nil
	})
	unserve(dev, g)

	dev, g, err = serve(dfudev.Options{Profile: dfudev.ProfileSTM32, TimeScale: 0.2, StallBlock: 5}, "0483:df11")
	check("fieldflash clears a stalled block with CLRSTATUS and goes on (DfuSe)", func() error {
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var ev eventLog
		out, err := flashUSB(ctx, stm32, bundle("dfuse-stall", file, verify.TargetMeta{Format: "dfuse"}), nil, ev.event)
		if err != nil || out.Result != flasher.ResultInstalled {
			return fmt.Errorf("%v\n%s", err, ev.String())
		}
		if st := dev.Stats(); st.ClrStatus < 1 || st.Stalls < 1 {
			return fmt.Errorf("the twin saw %+v", st)
		}
		return memEqual(dev, 0x08000000, els[0])
	})
	if err == nil {
		unserve(dev, g)
	}

	// The cable pulled in the middle and the resume: with the fieldflash binary (cli.go).
}

func dfuseFile() ([]byte, [][]byte) {
	e0, e1 := pattern(40000, 1), pattern(9000, 2)
	b, err := dfufile.BuildDfuSe([]dfufile.TargetImage{{Alt: 0, Blocks: []dfufile.Block{{Address: 0x08000000, Data: e0}, {Address: 0x08010000, Data: e1}}}},
		dfufile.Suffix{IDVendor: 0x0483, IDProduct: 0xdf11})
	if err != nil {
		panic(err)
	}
	return b, [][]byte{e0, e1}
}

func zephyrScenarios() {
	img := mcubootImage(30000, "2.0.0")
	dev, g, err := serve(dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, Initial: mcubootImage(9000, "1.0.0"), TimeScale: 0.2}, "2fe3:0100")
	check("the Zephyr twin enumerates in run-time mode", func() error { return err })
	if err != nil {
		return
	}
	check("dfu-util lists the run-time device, detaches it, downloads to image_1 and uploads it back", func() error {
		out, err := dfuUtil("-l")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Found Runtime: [2fe3:0100]") {
			return fmt.Errorf("dfu-util -l:\n%s", out)
		}
		// Detach (-e), then download in a second run: libusb in one process follows a
		// re-enumeration only through udev's daemon, which the VM does not run.
		if _, err := dfuUtil("-d", "2fe3:0100", "-e"); err != nil {
			return err
		}
		if err := waitHost("2fe3:ffff", 5*time.Second); err != nil {
			return err
		}
		if _, err := dfuUtil("-d", "2fe3:ffff", "-a", "1", "-D", write("/tmp/zimg.bin", img)); err != nil {
			return err
		}
		got := make([]byte, len(img))
		dev.Flash().Slot(flash.Secondary).ReadAt(got, 0)
		if i := firstDiff(got, img); i >= 0 {
			return fmt.Errorf("after the download the twin's image_1 differs from the image at byte %d (the twin took %d blocks, %d bytes)", i, dev.Stats().DataBlocks, dev.Stats().DataBytes)
		}
		os.Remove("/tmp/zup.bin")
		if _, err := dfuUtil("-d", "2fe3:ffff", "-a", "1", "-U", "/tmp/zup.bin"); err != nil {
			return err
		}
		up, _ := os.ReadFile("/tmp/zup.bin")
		if len(up) < len(img) || !bytes.Equal(up[:len(img)], img) {
			return fmt.Errorf("upload of %d bytes does not start with the %d-byte image", len(up), len(img))
		}
		return nil
	})
	unserve(dev, g)

	// fieldflash detaching the run-time device itself: with the fieldflash binary (cli.go).

	dev, g, err = serve(dfudev.Options{Profile: dfudev.ProfileZephyr, Upload: true, StartInDFU: true, StallBlock: 4, TimeScale: 0.2}, "2fe3:ffff")
	check("fieldflash clears a stalled block with CLRSTATUS and starts the plain DFU download again", func() error {
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var ev eventLog
		out, err := flashUSB(ctx, dfu.Match{VendorID: 0x2fe3, ProductID: 0xffff}, bundle("zephyr-stall", img, verify.TargetMeta{Protocol: verify.ProtocolHints{DFUAlt: ptrInt(1)}}), nil, ev.event)
		if err != nil || out.Result != flasher.ResultInstalled {
			return fmt.Errorf("%v\n%s", err, ev.String())
		}
		if !ev.has("CLRSTATUS") || !ev.has("read back all 30") {
			return fmt.Errorf("events:\n%s", ev.String())
		}
		return nil
	})
	if err == nil {
		unserve(dev, g)
	}
}

func ptrInt(v int) *int { return &v }
