//go:build darwin && !cgo

package transports

import "go.bug.st/serial"

// serialPorts lists the serial ports of this Mac by name only. The enumerator that reads
// USB vendor, product and serial number asks IOKit through cgo, and the macOS command line
// is cross-built with CGO_ENABLED=0 (docs/packaging.md): ports are listed and open as
// usual, without their USB identity. The Mac build with the GUI (cgo) has it.
func serialPorts() ([]PortInfo, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, err
	}
	ports := make([]PortInfo, 0, len(names))
	for _, n := range names {
		if n != "" {
			ports = append(ports, PortInfo{Path: n})
		}
	}
	return ports, nil
}
