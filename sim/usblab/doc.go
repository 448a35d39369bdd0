// Package usblab is the USB lab: sim/dfudev twins served as Linux USB gadgets through
// FunctionFS (and an ACM gadget carrying the SMP twin), inside a QEMU virtual machine
// whose dummy_hcd host controller connects them to the same kernel's USB host stack. So
// fieldflash (gousb, libusb, usbfs) and dfu-util talk to the twins through a real USB
// stack: enumeration, descriptors, control transfers, stalls, disconnects.
//
// TestUSBLab (FIELDFLASH_USBLAB=1, `make usblab`) builds the guest program (sim/usblab/guest,
// with cgo and libusb) and an initramfs, boots Debian's bookworm-backports 6.12 kernel
// (fetched by .ci/usblab-kernel) with qemu-system-x86_64 under TCG, and reads the guest's
// verdicts from the serial console. docs/usblab.md says what runs in it.
package usblab
