package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "devices", summary: "list serial ports, USB DFU devices and virtual devices; --probe asks what answers", run: cmdDevices})
}

const devicesHelp = `
Lists the serial ports of this machine, with the USB vendor and product id, serial number
and product name where the port is a USB adapter or device, then the virtual devices that
"fieldflash sim" and "fieldflash demo" run, then the USB devices with a DFU interface (in
DFU mode or in their application's run-time mode): ids, serial number, port, DFU version,
attributes, transfer size, and each alternate setting with its name and, for DfuSe, its
memory layout. USB needs the full build (cgo and libusb); --watch polls the USB bus every
second and prints the list when it changes.

With --probe each port is asked, gently, which protocol answers: SMP requests that only
read (mcumgr params, os info, image state: any SMP answer, even a refusal, counts), in
console frames and then as bare packets for Zephyr's raw UART transport (a Zephyr
application or MCUboot serial recovery), then a newline for a YMODEM bootloader's banner. Nothing is written to flash and nothing is reset, but a device
that is not a fieldflash target sees a few bytes; leave --probe off for unknown hardware.

Exit codes: 0 listed (also when there is nothing), 2 usage, 3 the ports could not be listed.`

func cmdDevices(e *env, args []string) int {
	fs := newFlags(e, "devices", "[--json] [--probe]", devicesHelp)
	jsonOut := fs.Bool("json", false, "print the list as JSON")
	probe := fs.Bool("probe", false, "ask each port which protocol answers (SMP echo, YMODEM banner; no reset)")
	baud := fs.Int("baud", app.DefaultBaud, "baud rate for --probe")
	watch := fs.Bool("watch", false, "keep listing USB DFU devices as they come and go (polled every second) until Ctrl-C")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 {
		app.Fprintln(e.stderr, "fieldflash devices: takes no arguments, only --json and --probe")
		return exitUsage
	}
	if *watch {
		return watchUSB(e, *jsonOut)
	}
	list, err := app.ListDevices()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	usbList, usbErr := listUSB()
	if *probe {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		app.ProbeDevices(ctx, list, *baud)
	}
	if *jsonOut {
		doc := map[string]any{"devices": list, "usb_dfu": usbList}
		if usbErr != "" {
			doc["usb_error"] = usbErr
		}
		writeJSON(e.stdout, doc)
		return exitOK
	}
	defer printUSB(e, usbList, usbErr)
	if len(list) == 0 {
		app.Fprintln(e.stdout, "No serial ports found. Plug the device in (and check the cable carries data, not only power), or start a virtual one with `fieldflash sim smp`.")
		return exitOK
	}
	for _, d := range list {
		app.Fprintf(e.stdout, "%s\n", d.Path)
		var facts []string
		switch {
		case d.Virtual:
			facts = append(facts, "virtual "+d.PortInfo.Protocol+" device")
			if d.Name != "" {
				facts = append(facts, d.Name)
			}
		case d.USB:
			facts = append(facts, "USB "+d.VID+":"+d.PortInfo.PID)
			for _, s := range []string{d.Manufacturer, d.Product} {
				if s != "" {
					facts = append(facts, s)
				}
			}
			if d.SerialNumber != "" {
				facts = append(facts, "serial "+d.SerialNumber)
			}
		default:
			facts = append(facts, "serial port")
		}
		app.Fprintf(e.stdout, "  %s\n", strings.Join(facts, ", "))
		if r := d.Probe; r != nil {
			switch {
			case r.Error != "":
				app.Fprintf(e.stdout, "  probe: %s\n", r.Error)
			case r.Protocol == "":
				app.Fprintln(e.stdout, "  probe: nothing answered (SMP, YMODEM)")
			default:
				app.Fprintf(e.stdout, "  probe: %s\n", app.DescribeIdentity(r.Identity, d.Path))
			}
		}
	}
	return exitOK
}

// writeJSONLine writes v as one line, for JSON-lines output.
func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(app.JSON(b), '\n'))
}

func listUSB() ([]app.USBDevice, string) {
	if !app.USBAvailable {
		return nil, app.ErrUSBNeedsFullBuild.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := app.ListUSB(ctx)
	if err != nil {
		return l, err.Error()
	}
	return l, ""
}

// printUSB prints the USB DFU devices: ids, serial, mode, DFU version, attributes,
// transfer size, and each alternate setting with its name and DfuSe memory layout.
// Strings from the device are escaped.
func printUSB(e *env, list []app.USBDevice, errText string) {
	if errText != "" {
		app.Fprintf(e.stdout, "USB DFU devices: %s\n", errText)
		return
	}
	if len(list) == 0 {
		app.Fprintln(e.stdout, "No USB DFU devices found (in DFU mode or with a run-time DFU interface).")
		return
	}
	for _, d := range list {
		i := d.Info
		app.Fprintf(e.stdout, "USB %s  %s\n", i.ID(), app.PrintableUSB(strings.TrimSpace(i.Manufacturer+" "+i.Product)))
		if d.Error != "" {
			app.Fprintf(e.stdout, "  port %s; cannot be opened: %s\n", i.Path, d.Error)
			continue
		}
		f := i.Functional
		app.Fprintf(e.stdout, "  serial %s, port %s, %s, %s, transfer size %d, attributes: %s\n",
			orDash(app.PrintableUSB(i.Serial)), i.Path, i.Mode(), app.DFUVersion(f.Version), f.TransferSize, f.Attributes)
		for _, a := range i.Alts {
			line := fmt.Sprintf("  alt %d", a.Setting)
			if a.Name != "" {
				line += fmt.Sprintf(" %q", app.PrintableUSB(a.Name))
			}
			app.Fprintln(e.stdout, line)
			if a.Layout != nil {
				app.Fprintf(e.stdout, "    memory: %s\n", app.PrintableUSB(a.Layout.String()))
			} else if a.LayoutErr != "" {
				app.Fprintf(e.stdout, "    memory layout unreadable: %s\n", app.PrintableUSB(a.LayoutErr))
			}
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watchUSB polls the USB DFU devices and prints the list whenever it changes.
func watchUSB(e *env, jsonOut bool) int {
	if !app.USBAvailable {
		app.Fprintln(e.stderr, "fieldflash devices --watch:", app.ErrUSBNeedsFullBuild)
		return exitEnv
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app.WatchUSB(ctx, time.Second, func(l []app.USBDevice, err error) {
		if jsonOut {
			doc := map[string]any{"time": time.Now(), "usb_dfu": l}
			if err != nil {
				doc["usb_error"] = err.Error()
			}
			writeJSONLine(e.stdout, doc)
			return
		}
		app.Fprintf(e.stdout, "— %s\n", time.Now().Format("15:04:05"))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		printUSB(e, l, msg)
	})
	return exitOK
}
