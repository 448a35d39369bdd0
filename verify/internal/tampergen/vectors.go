package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
)

type outFile struct {
	name string
	data []byte
}

// The main test repository ("acme"): root v1 is what the tests pin (root.json).
var (
	rootKey      = newKey("root")
	timestampKey = newKey("timestamp")
	snapshotKey  = newKey("snapshot")
	targetsKey   = newKey("targets")   // K1
	targetsKey2  = newKey("targets-2") // K2
)

func rootV1() rootSpec {
	return rootSpec{version: 1, root: one(rootKey), timestamp: one(timestampKey), snapshot: one(snapshotKey),
		targs: one(targetsKey), signers: []*key{rootKey}}
}

// rootV2 is root v2 with the targets role changed, signed by the unchanged root key.
func rootV2(targs roleKeys) rootSpec {
	s := rootV1()
	s.version = 2
	s.targs = targs
	return s
}

func intp(i int) *int          { return &i }
func u64p(i uint64) *uint64    { return &i }
func u16p(i uint16) *uint16    { return &i }
func dt(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// rawImage is deterministic filler firmware of n bytes, different for every name.
func rawImage(name string, n int) []byte {
	var out []byte
	block := sha256.Sum256([]byte("fieldflash-payload-" + name))
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}

// app is a raw application image for the acme-gw-r1 gateway.
func app(version string, counter uint64) payload {
	return payload{
		path: "acme-gw/app-" + version + ".bin",
		data: rawImage("app-"+version, 3000),
		meta: verify.TargetMeta{
			HardwareIDs:    []string{"acme-gw-r1"},
			Version:        version,
			ReleaseCounter: counter,
			Component:      "app",
			Format:         "raw",
			Protocol:       verify.ProtocolHints{Protocols: []string{"smp", "ymodem"}, ImageSlot: intp(0)},
			ReleaseNotes:   "Application " + version + " for the ACME gateway.",
		},
	}
}

func basic(targets ...payload) release {
	return release{roots: []rootSpec{rootV1()}, targets: targets}
}

type vector struct {
	name string
	make func() ([]byte, error)
}

func write(c *bundle.Contents) ([]byte, error) {
	var buf bytes.Buffer
	if err := bundle.Write(&buf, c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeRelease(r release) func() ([]byte, error) {
	return func() ([]byte, error) { return write(r.build()) }
}

func generate(upstream string) ([]outFile, error) {
	read := func(rel string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(upstream, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("%w (is -vectors the repository's testdata/ folder, holding mcuboot/ and dfu/?)", err)
		}
		return b, nil
	}
	mcubootBasic, err := read("mcuboot/ed25519-basic.bin")
	if err != nil {
		return nil, err
	}
	dfuse, err := read("dfu/dfuse-2elements.dfu")
	if err != nil {
		return nil, err
	}
	badCRC, err := read("dfu/fail-suffix-crc.dfu")
	if err != nil {
		return nil, err
	}

	app100 := app("1.0.0", 3)
	goodBasic := basic(app100)

	mcuboot := func(version string) payload {
		return payload{
			path: "acme-gw/app-mcuboot-" + version + ".bin",
			data: mcubootBasic,
			meta: verify.TargetMeta{
				HardwareIDs: []string{"acme-gw-r1"}, Version: version, ReleaseCounter: 7, Component: "app", Format: "mcuboot",
				Protocol: verify.ProtocolHints{Protocols: []string{"smp"}, ImageSlot: intp(0)},
			},
		}
	}
	dfusePayload := payload{
		path: "acme-gw/radio-dfuse-1.0.0.dfu",
		data: dfuse,
		meta: verify.TargetMeta{
			HardwareIDs: []string{"acme-gw-r1"}, Version: "1.0.0", ReleaseCounter: 1, Component: "radio", Format: "dfuse",
			Protocol: verify.ProtocolHints{Protocols: []string{"dfu"}, DFUAlt: intp(0), Address: u64p(0x08000000),
				USBVendor: u16p(0x0483), USBProduct: u16p(0xdf11)},
		},
	}
	badCRCPayload := payload{
		path: "acme-gw/radio-1.0.1.dfu",
		data: badCRC,
		meta: verify.TargetMeta{HardwareIDs: []string{"acme-gw-r1"}, Version: "1.0.1", ReleaseCounter: 1, Component: "radio", Format: "dfu",
			Protocol: verify.ProtocolHints{Protocols: []string{"dfu"}, DFUAlt: intp(0)}},
	}

	acmeGW1, acmeGW2 := newKey("acme-gw-1"), newKey("acme-gw-2")
	delegated := func(p payload) release {
		r := basic()
		r.delegation = &delegation{name: "acme-gw", keys: roleKeys{keys: []*key{acmeGW1, acmeGW2}, threshold: 2},
			signers: []*key{acmeGW1, acmeGW2}, paths: []string{"acme-gw/*"}, version: 1, targets: []payload{p}}
		return r
	}

	// Root rotation: v2 and v3 change every key; v3's root role needs two signatures.
	rotated := func() release {
		r2, r3a, r3b := newKey("root-2"), newKey("root-3a"), newKey("root-3b")
		v2 := rootSpec{version: 2, root: one(r2), timestamp: one(newKey("timestamp-2")), snapshot: one(newKey("snapshot-2")),
			targs: one(newKey("targets-v2")), signers: []*key{rootKey, r2}}
		v3 := rootSpec{version: 3, root: roleKeys{keys: []*key{r3a, r3b}, threshold: 2}, timestamp: one(newKey("timestamp-3")),
			snapshot: one(newKey("snapshot-3")), targs: one(newKey("targets-v3")), signers: []*key{r2, r3a, r3b}}
		return release{roots: []rootSpec{rootV1(), v2, v3}, targets: []payload{app("1.0.1", 3)}}
	}

	// Another vendor's repository, whose root nobody pinned.
	untrusted := func() release {
		v1 := rootSpec{version: 1, root: one(newKey("other-root")), timestamp: one(newKey("other-timestamp")),
			snapshot: one(newKey("other-snapshot")), targs: one(newKey("other-targets")), signers: []*key{newKey("other-root")}}
		return release{roots: []rootSpec{v1}, targets: []payload{app100}}
	}

	// versions builds a release of the main repository at the given role versions.
	versions := func(ts, snap, targs int64, targets []payload, carry []payload) release {
		r := basic(targets...)
		r.tsVersion, r.snapVersion, r.targetsVersion = ts, snap, targs
		r.carry = carry
		return r
	}
	app200, app300, app110 := app("2.0.0", 4), app("3.0.0", 5), app("1.1.0", 3)

	bootloaderReq := app("1.2.0", 3)
	bootloaderReq.meta.Requires = []verify.Requirement{{Component: "bootloader", Version: ">=2.0.0"}}

	vectors := []vector{
		{"good_basic", writeRelease(goodBasic)},
		{"good_delegated", writeRelease(delegated(app("1.0.2", 3)))},
		{"good_rotated_root", writeRelease(rotated())},
		{"good_mcuboot", writeRelease(basic(mcuboot("1.2.3+45")))},
		{"good_dfuse", writeRelease(basic(dfusePayload))},
		{"fail_untrusted_root", writeRelease(untrusted())},
		{"fail_bad_signature", func() ([]byte, error) {
			c := goodBasic.build()
			c.Targets = flipSignature(c.Targets)
			return write(c)
		}},
		{"fail_threshold_not_met", func() ([]byte, error) {
			r := basic(app100)
			r.roots = append(r.roots, rootV2(roleKeys{keys: []*key{targetsKey, targetsKey2}, threshold: 2}))
			r.targetsSigners = []*key{targetsKey}
			return write(r.build())
		}},
		{"fail_key_counted_twice", func() ([]byte, error) {
			r := basic(app100)
			v2 := rootV2(roleKeys{keys: []*key{targetsKey}, threshold: 2})
			v2.aliasTargets = true
			r.roots = append(r.roots, v2)
			return write(r.build())
		}},
		{"fail_revoked_key", func() ([]byte, error) {
			r := basic(app100)
			r.roots = append(r.roots, rootV2(one(targetsKey2)))
			r.targetsSigners = []*key{targetsKey}
			return write(r.build())
		}},
		{"fail_root_version_skipped", func() ([]byte, error) {
			r := basic(app100)
			v3 := rootV2(one(targetsKey))
			v3.version = 3
			r.roots = append(r.roots, v3)
			return write(r.build())
		}},
		{"fail_expired_targets", func() ([]byte, error) {
			r := basic(app100)
			r.targetsExpires = pastExpiry
			return write(r.build())
		}},
		{"fail_frozen_timestamp", func() ([]byte, error) {
			r := basic(app100)
			r.tsExpires = pastExpiry
			return write(r.build())
		}},
		{"fail_clock_backwards", func() ([]byte, error) {
			r := basic(app100)
			r.tsExpires = soonExpiry
			return write(r.build())
		}},

		// State-dependent cases: prime_<case>.fwb is verified first.
		{"prime_rollback_timestamp", writeRelease(versions(3, 3, 3, []payload{app300}, nil))},
		{"fail_rollback_timestamp", writeRelease(versions(2, 2, 2, []payload{app200}, nil))},
		{"prime_withdrawn_release", writeRelease(versions(2, 2, 2, []payload{app110}, nil))}, // 1.0.0 withdrawn
		{"fail_withdrawn_release", writeRelease(versions(1, 1, 1, []payload{app100}, nil))},
		{"prime_older_still_listed", writeRelease(versions(3, 3, 3, []payload{app100, app110}, []payload{app110}))},
		{"good_older_still_listed", writeRelease(versions(2, 2, 2, []payload{app100}, nil))},
		{"prime_rollback_snapshot", writeRelease(versions(3, 3, 3, []payload{app110}, nil))},
		{"fail_rollback_snapshot", writeRelease(versions(4, 2, 2, []payload{app110}, nil))},
		{"prime_rollback_targets", writeRelease(versions(3, 3, 3, []payload{app110}, nil))},
		{"fail_rollback_targets", func() ([]byte, error) {
			r := versions(4, 4, 2, []payload{app110}, nil)
			return write(r.build())
		}},

		{"fail_mix_and_match", writeRelease(func() release {
			r := basic(app100)
			r.carry = []payload{app200}
			return r
		}())},
		{"fail_tampered_payload", func() ([]byte, error) {
			b, err := write(goodBasic.build())
			if err != nil {
				return nil, err
			}
			off, size, err := payloadAt(b)
			if err != nil {
				return nil, err
			}
			b[off+size/2] ^= 0x01
			return b, nil
		}},
		{"fail_delegation_outside_paths", func() ([]byte, error) {
			p := app("1.0.3", 3)
			p.path = "other/app.bin"
			return write(delegated(p).build())
		}},
		{"fail_forged_key_id", func() ([]byte, error) {
			// Mallory's key listed under the product key's published id.
			r := delegated(app("1.0.7", 3))
			mallory := newKey("mallory")
			r.delegation.keys = one(mallory)
			r.delegation.signers = []*key{mallory}
			r.delegation.listAs = []string{acmeGW1.id}
			return write(r.build())
		}},
		// Hash bins (path_hash_prefixes) by the spec's hex SHA-256 of the path:
		// sha256("acme-gw/app-1.bin") = d5c32c46…, whose base64url form starts "1cMs".
		{"good_hash_bins", func() ([]byte, error) {
			p := app("1.0.8", 3)
			p.path = "acme-gw/app-1.bin"
			r := delegated(p)
			r.delegation.name, r.delegation.hashPrefixes = "bin-d5", []string{"d5"}
			return write(r.build())
		}},
		{"fail_wrong_hash_bin", func() ([]byte, error) {
			p := app("1.0.8", 3)
			p.path = "acme-gw/app-1.bin"
			r := delegated(p)
			r.delegation.name, r.delegation.hashPrefixes = "bin-1", []string{"1"}
			return write(r.build())
		}},
		{"fail_delegated_other_hardware", func() ([]byte, error) {
			// The gateway's product key signs an image for the sensor board.
			p := app("1.0.9", 3)
			p.meta.HardwareIDs = []string{"acme-sensor-r1"}
			r := delegated(p)
			r.delegation.hardware = []string{"acme-gw-r1", "acme-gw-r2"}
			return write(r.build())
		}},
		{"fail_too_many_signatures", func() ([]byte, error) {
			// Padding that would cost go-tuf's quadratic duplicate check; refused by count.
			r := basic(app100)
			r.junkTimestampSignatures = verify.MaxSignatures
			return write(r.build())
		}},
		// Text a terminal would act on, in a bundle: fieldflash prints it escaped.
		{"good_terminal_escapes", func() ([]byte, error) {
			p := app("1.0.10", 3)
			p.path = "acme-gw/app\x1b[2K.bin"
			p.meta.ReleaseNotes = "Fixes the watchdog.\r\x1b[2K\x1b[32m✔ acme-gw-9.9.fwb verified\x1b[0m\nSecond line \u009b31m\u202egnp.exe"
			p.meta.Advisories = []string{"ACME-SA-\x1b]0;owned\x07"}
			return write(basic(p).build())
		}},
		{"fail_terminal_escapes_in_type", func() ([]byte, error) {
			c := goodBasic.build()
			evil := `"_type":"timestamp\r\u001b[2K\u001b[32m\u2714 acme-gw-9.9.fwb verified\u001b[0m"`
			t := strings.Replace(string(c.Timestamp), `"_type":"timestamp"`, evil, 1)
			if t == string(c.Timestamp) {
				return nil, fmt.Errorf("timestamp has no _type to replace")
			}
			c.Timestamp = []byte(t)
			return write(c)
		}},
		{"good_one_payload_two_paths", func() ([]byte, error) {
			// One image for two hardware revisions, one payload entry, two signed targets.
			r1, r2 := app("1.0.11", 3), app("1.0.11", 3)
			r1.path, r2.path = "acme-gw-r1/app-1.0.11.bin", "acme-gw-r2/app-1.0.11.bin"
			r2.meta.HardwareIDs = []string{"acme-gw-r2"}
			r2.data = r1.data
			return write(basic(r1, r2).build())
		}},
		{"fail_wrong_hardware", writeRelease(basic(app("1.0.4", 3)))},
		{"fail_lower_release_counter", writeRelease(basic(app("1.0.5", 5)))},
		{"fail_requirement", writeRelease(basic(bootloaderReq))},
		{"fail_mcuboot_version_mismatch", writeRelease(basic(mcuboot("1.2.4")))},
		{"fail_dfu_suffix_crc", writeRelease(basic(badCRCPayload))},

		// The container itself.
		{"fail_truncated", func() ([]byte, error) {
			b, err := write(goodBasic.build())
			if err != nil {
				return nil, err
			}
			off, size, err := payloadAt(b)
			if err != nil {
				return nil, err
			}
			return b[:off+size/2], nil
		}},
		{"fail_trailing_garbage", func() ([]byte, error) {
			b, err := write(goodBasic.build())
			return append(b, []byte("appended after the end-of-archive marker\n")...), err
		}},
		{"fail_path_traversal", func() ([]byte, error) {
			return craft(goodBasic.build(), rawEntry{name: "metadata/../../evil.json", data: []byte(`{"evil":true}`)})
		}},
		{"fail_absolute_path", func() ([]byte, error) {
			return craft(goodBasic.build(), rawEntry{name: "/etc/evil.json", data: []byte(`{"evil":true}`)})
		}},
		{"fail_symlink", func() ([]byte, error) {
			return craft(goodBasic.build(), rawEntry{name: "metadata/acme-gw.json", typeflag: tar.TypeSymlink, linkname: "/etc/passwd"})
		}},
		{"fail_hardlink", func() ([]byte, error) {
			return craft(goodBasic.build(), rawEntry{name: "metadata/acme-gw.json", typeflag: tar.TypeLink, linkname: "metadata/targets.json"})
		}},
		{"fail_duplicate_entry", func() ([]byte, error) {
			other := basic(app200).build()
			return craft(goodBasic.build(), rawEntry{name: "metadata/targets.json", data: other.Targets})
		}},
		{"fail_oversized_metadata", func() ([]byte, error) {
			big := app("1.0.6", 3)
			big.meta.ReleaseNotes = strings.Repeat("Release notes padded to make targets.json 5 MiB. ", 5<<20/40)[:5<<20]
			c := basic(big).build()
			if len(c.Targets) <= 5<<20 || len(c.Targets) > 5<<20+4096 {
				return nil, fmt.Errorf("oversized targets.json is %d bytes, want just over 5 MiB", len(c.Targets))
			}
			return craftOversized(c)
		}},
		{"fail_huge_declared_size", func() ([]byte, error) { return hugeDeclaredSize(goodBasic.build()) }},
		{"fail_legacy_folder_hides_payload", func() ([]byte, error) { return hidePayloadInLegacyFolder(goodBasic.build()) }},
		{"fail_v7_header", func() ([]byte, error) {
			b, err := write(goodBasic.build())
			if err != nil {
				return nil, err
			}
			return b, patchHeader(b, "metadata/snapshot.json", func(h []byte) {
				for i := 257; i < 265; i++ { // magic and version: an old V7 header
					h[i] = 0
				}
			})
		}},
		{"fail_no_payload", func() ([]byte, error) {
			c := goodBasic.build()
			c.Payloads = nil
			return write(c)
		}},
	}

	files := []outFile{{name: "root.json", data: rootV1().bytes()}}
	for _, v := range vectors {
		b, err := v.make()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		files = append(files, outFile{name: v.name + ".fwb", data: b})
	}
	return files, nil
}

// flipSignature changes one bit of the first signature: the bytes still parse, the
// signature no longer verifies.
func flipSignature(targets []byte) []byte {
	m, err := metadata.Targets().FromBytes(targets)
	must(err)
	m.Signatures[0].Signature[10] ^= 0x01
	return toBytes(m)
}

// payloadAt finds the first payload's data in a bundle.
func payloadAt(b []byte) (int64, int64, error) {
	r := bundle.NewReader(bytes.NewReader(b), int64(len(b)), bundle.Limits{})
	p, err := r.NextPayload()
	if err != nil {
		return 0, 0, err
	}
	return p.Offset, p.Size, nil
}

func source(data []byte) bundle.PayloadSource {
	s := sha256.Sum256(data)
	return bundle.PayloadSource{
		SHA256: fmt.Sprintf("%x", s),
		Size:   int64(len(data)),
		Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// rawEntry is an entry bundle.Write would never produce.
type rawEntry struct {
	name     string
	typeflag byte
	linkname string
	data     []byte
}

// craft writes c the canonical way but slips extra in after the metadata, before the
// payloads: a hostile bundle that is well-formed tar.
func craft(c *bundle.Contents, extra ...rawEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeMetadata(tw, c); err != nil {
		return nil, err
	}
	for _, e := range extra {
		if err := writeRaw(tw, e); err != nil {
			return nil, err
		}
	}
	for _, p := range c.Payloads {
		data := payloadBytes(p)
		if err := writeRaw(tw, rawEntry{name: bundle.TargetsDir + p.SHA256, data: data}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func payloadBytes(p bundle.PayloadSource) []byte {
	rc, err := p.Open()
	must(err)
	b, err := io.ReadAll(rc)
	must(err)
	return b
}

func writeMetadata(tw *tar.Writer, c *bundle.Contents) error {
	for v := int64(1); v <= int64(len(c.Roots)); v++ {
		if err := writeRaw(tw, rawEntry{name: bundle.MetadataDir + strconv.FormatInt(v, 10) + ".root.json", data: c.Roots[v]}); err != nil {
			return err
		}
	}
	for _, f := range []rawEntry{{name: "metadata/timestamp.json", data: c.Timestamp}, {name: "metadata/snapshot.json", data: c.Snapshot}, {name: "metadata/targets.json", data: c.Targets}} {
		if err := writeRaw(tw, f); err != nil {
			return err
		}
	}
	return nil
}

func writeRaw(tw *tar.Writer, e rawEntry) error {
	typ := e.typeflag
	if typ == 0 {
		typ = tar.TypeReg
	}
	h := &tar.Header{Typeflag: typ, Name: e.name, Linkname: e.linkname, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
	if typ == tar.TypeReg {
		h.Size = int64(len(e.data))
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	_, err := tw.Write(e.data)
	return err
}

// craftOversized writes a bundle whose targets.json is over the 4 MiB limit, which
// bundle.Write refuses to produce.
func craftOversized(c *bundle.Contents) ([]byte, error) { return craft(c) }

// hugeDeclaredSize writes the metadata up to a targets.json header that declares 1 TiB,
// followed by a few real bytes and the end of the file. A reader that trusts the header
// would allocate a terabyte. ustar size fields hold 11 octal digits (8 GiB), so the size
// is in the base-256 form that GNU tar and archive/tar read.
func hugeDeclaredSize(c *bundle.Contents) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for v := int64(1); v <= int64(len(c.Roots)); v++ {
		if err := writeRaw(tw, rawEntry{name: bundle.MetadataDir + strconv.FormatInt(v, 10) + ".root.json", data: c.Roots[v]}); err != nil {
			return nil, err
		}
	}
	for _, f := range []rawEntry{{name: "metadata/timestamp.json", data: c.Timestamp}, {name: "metadata/snapshot.json", data: c.Snapshot}} {
		if err := writeRaw(tw, f); err != nil {
			return nil, err
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	hdr := make([]byte, 512)
	var hb bytes.Buffer
	htw := tar.NewWriter(&hb)
	if err := htw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "metadata/targets.json", Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	copy(hdr, hb.Bytes()[:512])
	size := hdr[124:136]
	for i := range size {
		size[i] = 0
	}
	size[0] = 0x80
	binary.BigEndian.PutUint64(size[4:], 1<<40)
	chk := hdr[148:156]
	for i := range chk {
		chk[i] = ' '
	}
	sum := 0
	for _, b := range hdr {
		sum += int(b)
	}
	copy(chk, fmt.Sprintf("%06o\x00 ", sum))
	out := append(buf.Bytes(), hdr...)
	return append(out, c.Targets[:200]...), nil
}

// patchHeader edits the header block of the entry called name in place and recomputes
// its checksum, as a hand-made archive would carry it.
func patchHeader(b []byte, name string, edit func(h []byte)) error {
	for off := 0; off+512 <= len(b); off += 512 {
		h := b[off : off+512]
		if !bytes.HasPrefix(h, append([]byte(name), 0)) || string(h[257:262]) != "ustar" {
			continue
		}
		edit(h)
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return nil
	}
	return fmt.Errorf("no header for %s", name)
}

// hidePayloadInLegacyFolder puts the payload entry inside the data of an entry named
// "targets/" with the legacy NUL typeflag: GNU tar skips that data, so `tar -tf` lists
// no payload, while a reader that takes the entry for an empty folder reads the payload
// as the next entry.
func hidePayloadInLegacyFolder(c *bundle.Contents) ([]byte, error) {
	b, err := write(c)
	if err != nil {
		return nil, err
	}
	off, size, err := payloadAt(b)
	if err != nil {
		return nil, err
	}
	start := off - 512
	end := off + (size+511)/512*512
	entry := append([]byte{}, b[start:end]...)
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	// archive/tar will not write a file name that ends in "/": "targetsX", patched below.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "targetsX", Mode: 0o644, Size: int64(len(entry)), ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	hdr := append([]byte{}, hb.Bytes()[:512]...)
	out := append(append(append(append([]byte{}, b[:start]...), hdr...), entry...), make([]byte, 1024)...)
	return out, patchHeader(out, "targetsX", func(h []byte) { h[7], h[156] = '/', 0 })
}
