package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// CustomKey is the key under a TUF target's "custom" object that holds fieldflash's
// signed target metadata. Other keys in "custom" are ignored.
const CustomKey = "fieldflash"

// TargetMeta is the signed, Uptane-style custom metadata of one target:
// target.custom.fieldflash in targets (or delegated targets) metadata.
type TargetMeta struct {
	// HardwareIDs lists the hardware the image fits, e.g. "acme-gw-r2". Required, non-empty.
	HardwareIDs []string `json:"hardware_ids"`
	// Version is the image version, semver 2.0 ("1.2.3", "1.2.3-rc.1+45"). Required.
	Version string `json:"version"`
	// ReleaseCounter is the anti-rollback counter: a device refuses a counter below its own.
	ReleaseCounter uint64 `json:"release_counter"`
	// Component names what the image replaces: "bootloader", "app", "radio", ... Required.
	Component string `json:"component"`
	// Format says how the payload describes itself: "raw" (default), "mcuboot", "dfu", "dfuse".
	Format string `json:"format,omitempty"`
	// Protocol carries hints for the flasher.
	Protocol ProtocolHints `json:"protocol,omitempty"`
	// Requires lists requirements on other components of the same device.
	Requires []Requirement `json:"requires,omitempty"`
	// ReleaseNotes is shown to the technician before flashing.
	ReleaseNotes string `json:"release_notes,omitempty"`
	// Advisories lists security advisory ids this release fixes, e.g. "ACME-SA-2026-07".
	Advisories []string `json:"advisories,omitempty"`
}

// ProtocolHints tell the flasher how the image goes onto the device. All optional.
type ProtocolHints struct {
	// Protocols the image may be flashed with, in order of preference: "smp", "ymodem", "dfu".
	Protocols []string `json:"protocols,omitempty"`
	// ImageSlot is the MCUmgr image number (0 for single-image devices).
	ImageSlot *int `json:"image_slot,omitempty"`
	// DFUAlt is the USB DFU alternate setting.
	DFUAlt *int `json:"dfu_alt,omitempty"`
	// Address is the flash address (DfuSe, raw bootloaders).
	Address *uint64 `json:"address,omitempty"`
	// USBVendor and USBProduct, when set, must agree with a DFU suffix's idVendor/idProduct.
	USBVendor  *uint16 `json:"usb_vendor,omitempty"`
	USBProduct *uint16 `json:"usb_product,omitempty"`
}

// Requirement is a condition on another component of the same device.
type Requirement struct {
	Component string `json:"component"`
	// Version is a constraint: ">=1.2.0", ">1.0.0", "=2.0.0", "<3.0.0", "<=3.0.0"; several
	// joined by spaces must all hold (">=1.2.0 <2.0.0").
	Version string `json:"version"`
}

// PinnedRoot is a root of trust on this machine: the trust store's or the embedded one.
type PinnedRoot struct {
	// Name is the repository (vendor) this root belongs to.
	Name string
	// Root is the raw root.json bytes as pinned.
	Root []byte
	// Demo roots are trusted only in demo mode.
	Demo bool
}

// StateKey is the key under which State keeps what was learned from this pin: the
// repository name and the SHA-256 of the pinned root's canonical signed part. A different
// root pinned under the same name (the vendor's fresh root after a key compromise) has
// another key and so starts from nothing, instead of inheriting a newest root that does
// not chain from it. Signatures and JSON formatting do not change the key.
func (p PinnedRoot) StateKey() string {
	var m struct {
		Signed json.RawMessage `json:"signed"`
	}
	sum := sha256.Sum256(p.Root)
	if json.Unmarshal(p.Root, &m) == nil && len(m.Signed) > 0 {
		var v any
		if json.Unmarshal(m.Signed, &v) == nil {
			if c, err := cjson.EncodeCanonical(v); err == nil {
				sum = sha256.Sum256(c)
			}
		}
	}
	return p.Name + StateKeySeparator + hex.EncodeToString(sum[:16])
}

// StateKeySeparator joins a repository name and its pin's hash in a StateKey. It is not
// a character of a trust store name, so the name is always what precedes the last one.
const StateKeySeparator = "@"

// Saved is what State keeps of one pinned root: the newest metadata trusted so far, only
// what was verified (each file's signed part with the signatures that counted, or the
// exact bytes where the snapshot or timestamp fixes them). Nil slices mean "none yet".
type Saved struct {
	Root      []byte
	Timestamp []byte
	Snapshot  []byte
	// Targets holds top-level "targets" and every delegated role, by role name.
	Targets map[string][]byte
}

// State remembers, across runs, the newest trusted metadata per pinned root (keyed by
// PinnedRoot.StateKey) and the newest trusted time. The app's implementation writes it
// atomically under $FIELDFLASH_HOME.
type State interface {
	Load(key string) (*Saved, error) // nil, nil when nothing is saved
	Save(key string, s *Saved) error
	NewestTime() (time.Time, error) // zero when none
	SaveNewestTime(t time.Time) error
}

// Locker is a State that can be held exclusively: VerifyFile holds it from the first read
// of State to the last write, so concurrent verifications on one machine take turns.
type Locker interface {
	Lock() (unlock func(), err error)
}

// Options says what to verify against. Zero values are safe defaults.
type Options struct {
	Roots []PinnedRoot
	// DemoMode allows roots with Demo set.
	DemoMode bool
	// State may be nil: then nothing is remembered and no rollback across runs is detected.
	State State
	// Now returns the system clock; nil means time.Now.
	Now func() time.Time
	// Hardware, when set, is the device's hardware id: every target must list it.
	Hardware string
	// CurrentCounter, when set, is the device's release counter: no target may be below it.
	CurrentCounter *uint64
	// Installed maps component to installed version, for Requires checks. Nil skips them,
	// except requirements between components carried in the same bundle.
	Installed map[string]string
	// Limits bound every size and count read from the bundle; zero fields take defaults.
	Limits Limits
}

// Limits bound what a bundle may make the reader do.
type Limits = bundle.Limits

// Verified is the verdict on a bundle that passed every check.
type Verified struct {
	Bundle string // file name as given
	// Digest identifies the bundle: SHA-256 over the file with each payload's bytes
	// replaced by the payload's SHA-256 (docs/bundle-format.md, "Bundle digest"); hex.
	Digest      string
	Repository  string // PinnedRoot.Name it chained to
	RootVersion int64
	Roles       []Role
	Targets     []Target
	// Older is set when the bundle's metadata is older than the newest trusted on this
	// machine and it was accepted because the newest targets still list its payloads.
	Older bool
	// RefTime is the time expiry was checked against: max(system clock, newest trusted time).
	RefTime time.Time
	// Warnings are facts the user must see even though the bundle verified, e.g. a clock
	// that went backwards.
	Warnings []string
}

// Role describes one signed role as verified.
type Role struct {
	Name      string // "root", "timestamp", "snapshot", "targets" or a delegated role
	Version   int64
	Expires   time.Time
	Threshold int
	SignedBy  []string // key ids whose signatures counted
	Delegator string   // "root" or the delegating targets role
}

// Target is one payload in the bundle, with the signed metadata that governs it.
type Target struct {
	Path   string // TUF target path
	Length int64
	SHA256 string // hex
	Role   string // the role that signed it
	Meta   TargetMeta
	// Offset is where the payload's bytes start in the bundle file.
	Offset int64
	// Image is what the payload says of itself, nil for raw payloads.
	Image *ImageInfo
}

// ImageInfo is the self-description of an image that was checked against TargetMeta.
type ImageInfo struct {
	Format          string // "mcuboot", "dfu", "dfuse"
	Version         string // MCUboot: "1.2.3+45"
	SecurityCounter *uint32
	ImageHash       string // MCUboot SHA256 TLV, hex
	Signed          bool   // MCUboot: has a signature TLV
	USBVendor       uint16 // DFU suffix
	USBProduct      uint16
	BcdDFU          uint16
	DfuSeTargets    []DfuSeTarget
}

// DfuSeTarget is one target prefix of a DfuSe file.
type DfuSeTarget struct {
	Alt      int
	Name     string
	Elements []DfuSeElement
}

// DfuSeElement is one element (address and size) of a DfuSe target.
type DfuSeElement struct {
	Address uint32
	Size    uint32
}
