// Package verify decides, offline, whether a firmware bundle (.fwb) may be flashed.
//
// A bundle is a plain ustar archive of standard TUF 1.0 metadata and the payloads it
// names (docs/bundle-format.md). Verification walks the bundle's root chain from a root
// pinned on this machine, checks every role with go-tuf's trustedmetadata (thresholds,
// expiry, versions), compares against the newest metadata this machine has trusted before
// (State), streams every payload through its hash, and then checks that each payload fits
// the device it is meant for: hardware id, release counter, requirements on other
// components, and, where the image describes itself (MCUboot header and TLVs, DFU
// suffixes), that its own fields agree with the signed metadata.
//
// Nothing here knows about devices or protocols: the device's facts come in through
// Options.
package verify
