package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/fieldflash/fieldflash/flasher"
	"github.com/fieldflash/fieldflash/flasher/smp"
	"github.com/fieldflash/fieldflash/flasher/ymodem"
	"github.com/fieldflash/fieldflash/transports"
	"github.com/fieldflash/fieldflash/transports/serial"
)

// DefaultBaud is the serial rate used when nobody says otherwise.
const DefaultBaud = serial.DefaultBaud

// Protocols are the device protocols fieldflash speaks over a serial port, in the order
// a probe tries them.
var Protocols = []string{"smp", "ymodem"}

// Probe is what answered on a port.
type Probe struct {
	Protocol string            `json:"protocol,omitempty"` // "" when nothing answered
	Identity *flasher.Identity `json:"identity,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// Device is one port with, after ProbeDevices, what answers on it.
type Device struct {
	transports.PortInfo
	Probe *Probe `json:"probe,omitempty"`
}

// ListDevices returns the serial ports of this machine (USB ones with their ids) and the
// announced virtual devices.
func ListDevices() ([]Device, error) {
	ports, err := transports.List()
	if err != nil {
		return nil, fmt.Errorf("listing serial ports: %v", err)
	}
	list := make([]Device, len(ports))
	for i, p := range ports {
		list[i] = Device{PortInfo: p}
	}
	return list, nil
}

// ProbeDevices asks every port in list, in parallel, which protocol answers (an SMP echo
// and mcumgr params, then a newline for a YMODEM banner; nothing is written to flash and
// nothing is reset), and fills in each Probe.
func ProbeDevices(ctx context.Context, list []Device, baud int) {
	var wg sync.WaitGroup
	for i := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var order []string
			if list[i].Protocol == "ymodem" {
				order = []string{"ymodem", "smp"}
			}
			r, err := ProbePort(ctx, list[i].Path, baud, order)
			if err != nil {
				r = &Probe{Error: err.Error()}
			}
			list[i].Probe = r
		}()
	}
	wg.Wait()
}

// WatchDevices lists the ports every interval until ctx ends and calls changed with the
// whole list whenever it differs from the last one (and once at the start), so a device
// that appears or goes away shows within one interval. changed runs on WatchDevices'
// goroutine; a face hands the list on to its own.
func WatchDevices(ctx context.Context, interval time.Duration, changed func([]Port, error)) {
	var last []Port
	var lastErr string
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ports, err := transports.List()
		es := ""
		if err != nil {
			es = err.Error()
		}
		if first || es != lastErr || !slices.Equal(ports, last) {
			first, last, lastErr = false, ports, es
			changed(slices.Clone(ports), err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ProbePort asks the port which protocol answers, in order (default smp, ymodem). It
// returns an error only when the port cannot be opened.
func ProbePort(ctx context.Context, path string, baud int, order []string) (*Probe, error) {
	if len(order) == 0 {
		order = Protocols
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
			return &Probe{Protocol: proto, Identity: id}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return &Probe{}, nil
}

func probeOne(ctx context.Context, p io.ReadWriter, baud int, proto string) *flasher.Identity {
	switch proto {
	case "smp":
		// Identify, not echo: any valid SMP answer is an SMP device (stock MCUboot serial
		// recovery answers echo with rc 8, stock Zephyr answers neither params nor info),
		// and image state is what every one of them answers. Two tries: one in console
		// frames, one on the raw UART transport.
		d := smp.New(p, smp.Options{Timeout: 400 * time.Millisecond, Retries: 1, Baud: baud})
		defer d.Close()
		id, err := d.Identify(ctx)
		var de *smp.DeviceError
		switch {
		case err == nil:
			return id
		case errors.As(err, &de):
			return &flasher.Identity{Protocol: "smp", Transport: d.Transport()} // it answered, and refused
		}
		return nil
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

// answered says whether an identity came from a device that answered at all: a YMODEM
// port stays silent without error when nothing is there.
func answered(id *flasher.Identity) bool {
	return id != nil && (id.Protocol != "ymodem" || id.HardwareID != "" || id.Mode != "")
}

// ProtocolName is a protocol as people call it.
func ProtocolName(p string) string {
	switch p {
	case "smp":
		return "SMP (MCUmgr)"
	case "ymodem":
		return "YMODEM bootloader"
	case "dfu":
		return "USB DFU"
	}
	return p
}

// RunningVersion is the version of the image a device reports running.
func RunningVersion(id *flasher.Identity) string {
	if id == nil {
		return "?"
	}
	for _, s := range id.Slots {
		if s.Active && s.Version != "" {
			return s.Version
		}
	}
	for _, s := range id.Slots {
		if s.Slot == 0 && s.Version != "" {
			return s.Version
		}
	}
	if v := id.Components["app"]; v != "" {
		return v
	}
	if v := id.Components["image0"]; v != "" {
		return v
	}
	return "unknown"
}

// DescribeIdentity is one line about a device: hardware, port, protocol, mode, version.
func DescribeIdentity(id *flasher.Identity, port string) string {
	if id.Protocol == "dfu" {
		// A DFU device names no hardware and no version; its descriptors say what it is.
		return fmt.Sprintf("USB DFU device on %s: %s", port, id.Bootloader)
	}
	hw := id.HardwareID
	if hw == "" {
		hw = "(hardware id not reported)"
	}
	s := fmt.Sprintf("%s on %s: %s", hw, port, ProtocolName(id.Protocol))
	if id.Transport == "raw" {
		s += " on the raw UART transport"
	}
	if id.Mode != "" && id.Protocol != "ymodem" { // a YMODEM device always answers from its bootloader
		s += ", " + id.Mode
	}
	if id.Mode == flasher.ModeRecovery && id.Protocol == "smp" {
		s += ", primary slot holds " + RunningVersion(id)
	} else {
		s += ", running " + RunningVersion(id)
	}
	if id.Bootloader != "" {
		s += ", bootloader " + id.Bootloader
	}
	if id.ReleaseCounter != nil {
		s += fmt.Sprintf(", release counter %d", *id.ReleaseCounter)
	}
	return s
}
