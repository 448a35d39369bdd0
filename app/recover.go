package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/fieldflash/fieldflash/app/audit"
	"github.com/fieldflash/fieldflash/flasher"
)

// What a recovery probe found on a port (Recovery.State).
const (
	StateSilent            = "silent"                  // nothing answered
	StateSerialRecovery    = "mcuboot-serial-recovery" // MCUboot's serial recovery waits for an image
	StateApplication       = "application"             // the application runs and answers MCUmgr
	StateBootloaderWaiting = "bootloader-waiting"      // a YMODEM bootloader asks for a file, no banner
	StateBootloader        = "bootloader"              // a YMODEM bootloader with a banner
)

// Recovery is what a device that does not boot, or does not answer as it should, said
// when asked: support staff read State and Text, and Next when nothing answered.
type Recovery struct {
	Port     string
	Tried    []string // the protocols asked, in order
	Probe    *Probe
	State    string
	Text     string // the state in plain words
	Next     string // when silent: which button to hold, which cable to check; for a DFU device, what recover does about its state
	Identity *flasher.Identity

	// USB is the DFU device a USB recovery probe found (ProbeRecoveryUSB), USBSpec what
	// picks it again, and DFU the state and status it reported; nil for a serial port.
	USB     *USBDevice
	USBSpec string
	DFU     *DFUState
}

// Answered says whether anything answered.
func (r *Recovery) Answered() bool { return r.State != StateSilent }

// ProbeRecovery asks the port for MCUboot serial recovery, a running MCUmgr application
// or a YMODEM bootloader (protocol "" tries both) and says what state the device is in.
// The error is for a port that could not be opened or a cancelled ctx; a silent device
// is a Recovery with State StateSilent.
func ProbeRecovery(ctx context.Context, port string, baud int, protocol string) (*Recovery, error) {
	var order []string
	if protocol != "" {
		order = []string{protocol}
	}
	r := &Recovery{Port: port, Tried: order}
	if len(r.Tried) == 0 {
		r.Tried = Protocols
	}
	if baud == 0 {
		baud = DefaultBaud
	}
	pr, err := ProbePort(ctx, port, baud, order)
	if err != nil {
		return nil, err
	}
	r.Probe = pr
	if pr.Protocol == "" {
		r.State, r.Next = StateSilent, SilentHint(protocol, port)
		r.Text = fmt.Sprintf("nothing answers on %s (tried %s)", port, strings.Join(ProtocolNames(r.Tried), " and "))
		return r, nil
	}
	r.Identity = pr.Identity
	r.State = deviceState(pr.Identity)
	r.Text = stateText(r.State, pr.Identity)
	return r, nil
}

// Recover flashes the bundle's target onto a device a recovery probe found, through the
// same engine as Flash (resumable). A bootloader that does not report its hardware id
// needs req.Hardware, from the board's label: without it Recover refuses and names the
// hardware ids the bundle has firmware for.
func (s *Session) Recover(ctx context.Context, rec *Recovery, req FlashRequest, events func(Event)) *FlashResult {
	if rec.USB != nil {
		return s.recoverUSB(ctx, rec, req, events)
	}
	req.Port, req.Protocol = rec.Port, rec.Probe.Protocol
	if rec.Identity.HardwareID == "" && req.Hardware == "" {
		ids := bundleHardware(req.Bundle, req.Protocol)
		err := &flasher.Error{Code: flasher.CodeHardware, Thing: "device on " + rec.Port,
			Reason: "the bootloader does not report its hardware id",
			Next:   fmt.Sprintf("read it from the board's label and pass --hardware; this bundle has firmware for %s", strings.Join(ids, ", "))}
		res := &FlashResult{Port: rec.Port, Protocol: req.Protocol, Before: rec.Identity, Err: err, Status: StatusRefused}
		s.recordFlash(audit.KindRecovery, req, res, 0)
		return res
	}
	return s.flash(ctx, req, events, audit.KindRecovery)
}

// deviceState names what a probe found, for people and for --json.
func deviceState(id *flasher.Identity) string {
	switch {
	case id.Protocol == "smp" && id.Mode == flasher.ModeRecovery:
		return StateSerialRecovery
	case id.Protocol == "smp":
		return StateApplication
	case id.Protocol == "ymodem" && id.HardwareID == "":
		return StateBootloaderWaiting
	}
	return StateBootloader
}

func stateText(state string, id *flasher.Identity) string {
	switch state {
	case StateSerialRecovery:
		s := "MCUboot serial recovery: the bootloader runs and waits for an image, which goes straight into the primary slot"
		if v := RunningVersion(id); v != "unknown" {
			s += "; the primary slot holds " + v
		} else {
			s += "; the primary slot holds no bootable image"
		}
		return s
	case StateApplication:
		return "the application runs and answers MCUmgr: nothing is stuck; `fieldflash flash` updates it the normal way (trial boot, confirm)"
	case StateBootloaderWaiting:
		return "a bootloader asks for a file (YMODEM) but prints no banner: it takes an image; power-cycle the device afterwards"
	}
	if v := RunningVersion(id); v != "unknown" && v != "" {
		return "the YMODEM bootloader waits for an image; its application is " + v
	}
	return "the YMODEM bootloader waits for an image; it holds no application"
}

// ProtocolNames are the protocols of order (default: all) as people call them.
func ProtocolNames(order []string) []string {
	if len(order) == 0 {
		order = Protocols
	}
	out := make([]string, len(order))
	for i, p := range order {
		out[i] = ProtocolName(p)
	}
	return out
}

// SilentHint is the next step when nothing answers, in the words of the protocol's
// hardware: the engine's hint where the protocol is known.
func SilentHint(protocol, port string) string {
	if protocol == "smp" || protocol == "ymodem" {
		return flasher.RecoveryHint(protocol, port)
	}
	return fmt.Sprintf("Check that the cable is seated (a data cable, not a charge-only one) and the device is powered. "+
		"For an MCUboot device, hold the BOOT (recovery) button while pressing RESET; for a classic bootloader, power-cycle it while holding its UPDATE key. "+
		"Then run `fieldflash recover --port %s` again", port)
}

// BundleHardware lists the hardware ids the bundle has firmware for over protocol, for
// a person who must pick the board from its label.
func BundleHardware(v *Verified, protocol string) []string { return bundleHardware(v, protocol) }
