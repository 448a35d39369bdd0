package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/transports/serial"
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

// probeResult is what answered on a port.
type probeResult struct {
	Protocol string            `json:"protocol,omitempty"` // "" when nothing answered
	Identity *flasher.Identity `json:"identity,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// probePort asks the port which protocol answers, in order (default smp, ymodem). It
// returns an error only when the port cannot be opened.
func probePort(ctx context.Context, path string, baud int, order []string) (*probeResult, error) {
	if len(order) == 0 {
		order = []string{"smp", "ymodem"}
	}
	for _, proto := range order {
		p, err := serial.Open(path, baud)
		if err != nil {
			return nil, err
		}
		if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
			p.Close()
			return nil, fmt.Errorf("serial port %s: %v", path, err)
		}
		id := probeOne(ctx, p, baud, proto)
		p.Close()
		if id != nil {
			return &probeResult{Protocol: proto, Identity: id}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return &probeResult{}, nil
}

func probeOne(ctx context.Context, p io.ReadWriter, baud int, proto string) *flasher.Identity {
	switch proto {
	case "smp":
		d := smp.New(p, smp.Options{Timeout: 400 * time.Millisecond, Retries: 1, Baud: baud})
		defer d.Close()
		if _, err := d.Echo(ctx, "fieldflash probe"); err != nil {
			return nil
		}
		id, err := d.Identify(ctx)
		if err != nil {
			return &flasher.Identity{Protocol: "smp"}
		}
		return id
	case "ymodem":
		d := ymodem.New(p, ymodem.Options{IdentifyTimeout: 1500 * time.Millisecond})
		defer d.Close()
		id, err := d.Identify(ctx)
		if err != nil || !answered(id) {
			return nil
		}
		return id
	}
	return nil
}

type deviceEntry struct {
	transports.PortInfo
	Probe *probeResult `json:"probe,omitempty"`
}

func cmdDevices(e *env, args []string) int {
	fs := newFlags(e, "devices", "[--json] [--probe]", devicesHelp)
	jsonOut := fs.Bool("json", false, "print the list as JSON")
	probe := fs.Bool("probe", false, "ask each port which protocol answers (SMP echo, YMODEM banner; no reset)")
	baud := fs.Int("baud", serial.DefaultBaud, "baud rate for --probe")
	if code, stop := parse(e, fs, args); stop {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "fieldflash devices: takes no arguments, only --json and --probe")
		return exitUsage
	}
	ports, err := transports.List()
	if err != nil {
		return reportEnv(e, *jsonOut, fmt.Errorf("listing serial ports: %v", err))
	}
	list := make([]deviceEntry, len(ports))
	for i, p := range ports {
		list[i] = deviceEntry{PortInfo: p}
	}
	if *probe {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var order []string
				if list[i].Protocol == "ymodem" {
					order = []string{"ymodem", "smp"}
				}
				r, err := probePort(ctx, list[i].Path, *baud, order)
				if err != nil {
					r = &probeResult{Error: err.Error()}
				}
				list[i].Probe = r
			}()
		}
		wg.Wait()
	}
	if *jsonOut {
		writeJSON(e.stdout, map[string]any{"devices": list})
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "No serial ports found. Plug the device in (and check the cable carries data, not only power), or start a virtual one with `fieldflash sim smp`.")
		return exitOK
	}
	for _, d := range list {
		fmt.Fprintf(e.stdout, "%s\n", d.Path)
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
		fmt.Fprintf(e.stdout, "  %s\n", strings.Join(facts, ", "))
		if r := d.Probe; r != nil {
			switch {
			case r.Error != "":
				fmt.Fprintf(e.stdout, "  probe: %s\n", r.Error)
			case r.Protocol == "":
				fmt.Fprintln(e.stdout, "  probe: nothing answered (SMP, YMODEM)")
			default:
				fmt.Fprintf(e.stdout, "  probe: %s\n", describeIdentity(r.Identity, d.Path))
			}
		}
	}
	return exitOK
}

// writeJSONLine writes v as one line, for JSON-lines output.
func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}
