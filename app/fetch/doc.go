// Package fetch brings a vendor's newest signed releases onto the laptop while it is
// online, so that the technician can work offline at the site.
//
// It refreshes the vendor's TUF metadata the way the TUF client workflow prescribes (root
// rotation one version at a time, timestamp, snapshot, targets, every delegated role),
// with go-tuf's trustedmetadata making every check, from one or more mirrors; the
// newest trusted metadata is the same verify.State that offline verification reads, so
// what a fetch learns (a withdrawn release, a rotated key) protects every later
// verification. It then downloads the targets that fit the hardware the technician chose
// into the content-addressed cache (app/cache), streaming, resumable with HTTP Range,
// checked chunk by chunk against the chunk hashes the release tool signs, retried with
// exponential backoff and jitter, and moved to the next mirror when one is down, slow or
// wrong. Bundle then assembles a standard .fwb from the cache, which verify accepts on any
// laptop.
//
// go-tuf's own updater is not used as is because it reads whole target files into memory
// (go-tuf issue 689), cannot list the targets of every delegated role, and keeps its own
// cache directory instead of verify.State; this package follows its workflow step for
// step, and trustedmetadata decides.
package fetch
