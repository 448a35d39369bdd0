// Package dfu speaks USB Device Firmware Upgrade to a device: DFU 1.1 (USB-IF, "Device
// Class Specification for Device Firmware Upgrade", version 1.1) and ST's DfuSe extension
// (UM0424, AN3156): class requests on the DFU interface's control pipe, the GETSTATUS
// polling that honours bwPollTimeout, manifestation, upload read-back, and, for DfuSe,
// page erase, set-address and leave.
//
// The package holds no USB code: it talks through Conn, one open DFU interface, which
// transports/usb implements with gousb (cgo) and sim/dfudev implements in process. So the
// protocol, its parsers and its fuzz targets build and test with CGO_ENABLED=0.
//
// Driver is the flasher.Driver. A plain DFU 1.1 device has no addressing: an interrupted
// download starts again from byte 0. A DfuSe device is asked what it holds (upload) and
// the download resumes at the first page that does not match the image.
package dfu
