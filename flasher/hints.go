package flasher

import "fmt"

// RecoveryHint is the next concrete step for a technician whose device stopped
// answering, in the words of the protocol's hardware: which button, which cable.
func RecoveryHint(protocol, port string) string {
	if port == "" {
		port = "<port>"
	}
	switch protocol {
	case "smp":
		return fmt.Sprintf("Check that the USB cable is seated (a data cable, not a charge-only one) and the device is powered. If it does not answer within a minute, hold the BOOT (MCUboot recovery) button while pressing RESET, then run `fieldflash recover --port %s`", port)
	case "ymodem":
		return fmt.Sprintf("The bootloader stopped answering. Power-cycle the device while holding its UPDATE key so the bootloader waits for a download, then run `fieldflash recover --port %s`", port)
	case "dfu":
		return fmt.Sprintf("Hold BOOT while plugging the USB cable back in, then run `fieldflash recover --port %s`", port)
	}
	return fmt.Sprintf("Check the cable and the device's power, then run `fieldflash recover --port %s`", port)
}

// unconfirmedHint tells what happens to a device left in a trial boot.
func unconfirmedHint(protocol, port string) string {
	return "The new image was not confirmed, so the bootloader returns to the previous image at the next reset: power-cycle the device. " + RecoveryHint(protocol, port)
}
