// Package smp speaks MCUmgr's Simple Management Protocol over a serial console, as Zephyr
// applications and MCUboot serial recovery do: the console framing (base64 lines with a
// length prefix and a CRC16), the 8-byte SMP header, the CBOR bodies of the os and image
// groups, both error forms (SMP v1 "rc" and v2 "err"), and a flasher.Driver built on them.
//
// The device side of the same protocol lives in sim/smpdev and uses this package's codec,
// so both ends share one reading of the wire format. docs/protocols.md § SMP writes down
// the choices this package makes where Zephyr and MCUboot leave room.
package smp
