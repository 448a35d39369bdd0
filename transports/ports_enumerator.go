//go:build !(darwin && !cgo)

package transports

import (
	"strings"

	"go.bug.st/serial/enumerator"
)

// serialPorts lists the serial ports of this machine with the USB identity of those on
// USB, through go.bug.st/serial's enumerator.
func serialPorts() ([]PortInfo, error) {
	details, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, err
	}
	var ports []PortInfo
	for _, d := range details {
		if d == nil || d.Name == "" {
			continue
		}
		ports = append(ports, PortInfo{
			Path:         d.Name,
			USB:          d.IsUSB,
			VID:          strings.ToLower(d.VID),
			PID:          strings.ToLower(d.PID),
			SerialNumber: d.SerialNumber,
			Manufacturer: d.Manufacturer,
			Product:      d.Product,
		})
	}
	return ports, nil
}
