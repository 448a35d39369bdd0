// Package bundle reads and writes the .fwb container: a plain ustar archive holding the
// TUF metadata of one repository (metadata/) followed by the payloads it names by hash
// (targets/). It knows nothing of trust; package verify decides what the contents mean.
// docs/bundle-format.md is the specification.
package bundle

// Limits bound what a bundle may make the reader do. Zero fields take the defaults below.
type Limits struct {
	MaxMetadataBytes int64 // per metadata file; default 4 MiB
	MaxRootVersions  int   // root files in the chain; default 1024
	MaxRoles         int   // delegated role files; default 256
	MaxEntries       int   // archive entries in all; default 4096
	MaxPayloadBytes  int64 // per payload; default 64 GiB
	// MaxMetadataTotalBytes bounds all metadata files together, which the reader holds in
	// memory; default 32 MiB.
	MaxMetadataTotalBytes int64
}

// Default limits.
const (
	DefaultMaxMetadataBytes = 4 << 20
	DefaultMaxRootVersions  = 1024
	DefaultMaxRoles         = 256
	DefaultMaxEntries       = 4096
	DefaultMaxPayloadBytes  = 64 << 30

	DefaultMaxMetadataTotalBytes = 32 << 20
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxMetadataBytes == 0 {
		l.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if l.MaxRootVersions == 0 {
		l.MaxRootVersions = DefaultMaxRootVersions
	}
	if l.MaxRoles == 0 {
		l.MaxRoles = DefaultMaxRoles
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxPayloadBytes == 0 {
		l.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if l.MaxMetadataTotalBytes == 0 {
		l.MaxMetadataTotalBytes = DefaultMaxMetadataTotalBytes
	}
	return l
}
