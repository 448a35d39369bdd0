package smpdev

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Profile is the firmware a virtual device runs, as its upstream sources and their
// Kconfig defaults make it answer. A nil *Profile in Options keeps the simulator's
// original device (params, info and every optional command on, a 2 KiB buffer, uploads
// answered as fieldflash's own tests expect): fast, and what the older tests were written
// against. The named profiles follow upstream.
//
// Zephyr (application side) follows subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt.c,
// zephyr_img_mgmt.c and img_mgmt_state.c, subsys/mgmt/mcumgr/grp/os_mgmt and
// subsys/mgmt/mcumgr/transport (smp_uart.c, smp_raw_uart.c, serial_util.c); MCUboot's
// serial recovery follows boot/boot_serial/src/boot_serial.c.
type Profile struct {
	Name    string
	Summary string

	// Application (Zephyr's MCUmgr); false and 0 are the Kconfig defaults.
	Params         bool // CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS (default n): os mcumgr params
	Info           bool // CONFIG_MCUMGR_GRP_OS_INFO (default n): os info
	BootloaderInfo bool // CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO (default n)
	// NetBufSize is CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE (default 384): the largest SMP
	// packet the device takes; NetBufCount CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT (4).
	NetBufSize  int
	NetBufCount int
	// ImageCheck is CONFIG_IMG_ENABLE_IMAGE_CHECK (default n): the last upload answer
	// carries "match", the device's own SHA-256 check of what it received.
	ImageCheck bool
	// EraseProgressively is CONFIG_IMG_ERASE_PROGRESSIVELY (default n): without it the
	// first chunk erases the whole image's pages before it is answered.
	EraseProgressively bool
	// RawUART is CONFIG_MCUMGR_TRANSPORT_RAW_UART (with CONFIG_UART_MCUMGR_RAW_PROTOCOL):
	// the console UART carries bare SMP packets (8-byte header, body, no base64, no
	// CRC) instead of SMP-over-console frames.
	RawUART bool
	// RawInputTimeout is CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT with its
	// _TIME_MS: a partial raw packet older than this is dropped; 0 is the option off.
	RawInputTimeout time.Duration

	// MCUboot serial recovery (boot_serial.c), false and 0 the defaults of MCUboot's
	// Zephyr port (boot/zephyr/Kconfig.serial_recovery).
	RecoveryEcho   bool // CONFIG_BOOT_MGMT_ECHO (MCUBOOT_BOOT_MGMT_ECHO), default n: echo answers rc 8
	RecoveryParams bool // MCUBOOT_BOOT_MGMT_MCUMGR_PARAMS, default n
	// RecoveryBufSize is CONFIG_BOOT_SERIAL_MAX_RECEIVE_SIZE (default 1024).
	RecoveryBufSize int
	// RecoveryEraseProgressively is CONFIG_BOOT_ERASE_PROGRESSIVELY (default n): without
	// it every chunk at offset 0 erases the whole primary slot before it is answered.
	RecoveryEraseProgressively bool

	// BootsToRecovery: the board comes up in serial recovery (the button held, or no
	// bootable image), as a support technician meets a dead device.
	BootsToRecovery bool
}

// The named profiles.
var (
	// ProfileZephyr is a stock Zephyr application with MCUmgr over the console UART
	// (CONFIG_MCUMGR_TRANSPORT_UART) and the os and img groups, every other option at
	// its default, with stock MCUboot below it.
	ProfileZephyr = Profile{Name: "zephyr", Summary: "stock Zephyr: no params, info or bootloader info, 384-byte buffer, console framing",
		NetBufSize: 384, NetBufCount: 4, RecoveryBufSize: 1024}
	// ProfileZephyrTuned is Zephyr built for fast updates: params, os info and
	// bootloader info on, a 4 KiB buffer (CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=4096),
	// progressive erase, the device's own image check, and the raw UART transport with its
	// input timeout (CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT=y, 100 ms).
	ProfileZephyrTuned = Profile{Name: "zephyr-tuned", Summary: "Zephyr tuned for speed: params and info on, 4 KiB buffer, progressive erase, raw UART transport",
		Params: true, Info: true, BootloaderInfo: true, NetBufSize: 4096, NetBufCount: 4,
		ImageCheck: true, EraseProgressively: true, RawUART: true, RawInputTimeout: 100 * time.Millisecond, RecoveryBufSize: 1024}
	// ProfileMCUboot is stock MCUboot serial recovery (CONFIG_MCUBOOT_SERIAL,
	// CONFIG_BOOT_SERIAL_UART): the board is held in recovery; echo is off, uploads go
	// straight to the primary slot, the whole slot is erased on each chunk at offset 0,
	// writes are cut to the flash write alignment.
	ProfileMCUboot = Profile{Name: "mcuboot", Summary: "stock MCUboot serial recovery: echo off, 1024-byte buffer, whole-slot erase at offset 0, aligned writes",
		NetBufSize: 384, NetBufCount: 4, RecoveryBufSize: 1024, BootsToRecovery: true}
)

// Profiles lists the named SMP profiles.
func Profiles() []Profile { return []Profile{ProfileZephyr, ProfileZephyrTuned, ProfileMCUboot} }

// LookupProfile finds a named profile.
func LookupProfile(name string) (*Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name == name {
			p := p
			return &p, nil
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("device profile %q: the simulator has %s", name, strings.Join(names, ", "))
}

// bufferSizeLocked is the packet limit in the mode the device runs.
func (d *Device) bufferSizeLocked() int {
	if p := d.opt.Profile; p != nil {
		if d.inRecoveryLocked() {
			return p.RecoveryBufSize
		}
		return p.NetBufSize
	}
	return d.opt.BufferSize
}
