package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/fieldflash/fieldflash/app"
)

func init() {
	register(&command{name: "devices", summary: "list serial ports and virtual devices; --probe asks what answers", run: cmdDevices})
}

const devicesHelp = `
Lists the serial ports of this machine, with the USB vendor and product id, serial number
and product name where the port is a USB adapter or device, then the virtual devices that
"fieldflash sim" and "fieldflash demo" run.

With --probe each port is asked, gently, which protocol answers: an SMP echo and
mcumgr params (a Zephyr application or MCUboot serial recovery), then a newline for a
YMODEM bootloader's banner. Nothing is written to flash and nothing is reset, but a device
that is not a fieldflash target sees a few bytes; leave --probe off for unknown hardware.

Exit codes: 0 listed (also when there is nothing), 2 usage, 3 the ports could not be listed.`

func cmdDevices(e *env, args []string) int {
	fs := newFlags(e, "devices", "[--json] [--probe]", devicesHelp)
	jsonOut := fs.Bool("json", false, "print the list as JSON")
	probe := fs.Bool("probe", false, "ask each port which protocol answers (SMP echo, YMODEM banner; no reset)")
	baud := fs.Int("baud", app.DefaultBaud, "baud rate for --probe")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 {
		app.Fprintln(e.stderr, "fieldflash devices: takes no arguments, only --json and --probe")
		return exitUsage
	}
	list, err := app.ListDevices()
	if err != nil {
		return reportEnv(e, *jsonOut, err)
	}
	if *probe {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		app.ProbeDevices(ctx, list, *baud)
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"devices": list})
		return exitOK
	}
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
