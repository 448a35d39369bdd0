package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// NewTarget is a payload to list in a targets role.
type NewTarget struct {
	// Path is the TUF target path, e.g. "acme-gw/app-1.2.3.bin".
	Path string
	// File is the payload file to copy into the repository.
	File string
	// Role lists it: "targets" when empty, else a delegated role whose paths cover Path.
	Role string
	Meta verify.TargetMeta
}

// Known values of TargetMeta fields; verify refuses others.
var (
	Formats   = []string{"raw", "mcuboot", "dfu", "dfuse"}
	Protocols = []string{"smp", "ymodem", "dfu"}
)

var (
	// semver 2.0, from semver.org.
	semverRE     = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	constraintRE = regexp.MustCompile(`^(>=|<=|>|<|=)(.+)$`)
	targetPathRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)
	wordRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// CheckTargetPath refuses target paths that could escape a folder or mean different files
// on different systems.
func CheckTargetPath(p string) error {
	if !targetPathRE.MatchString(p) {
		return fmt.Errorf("target path %q: use letters, digits, '.', '_', '+', '-' and '/' between names, e.g. \"acme-gw/app-1.2.3.bin\"", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("target path %q: \".\" and \"..\" are not allowed", p)
		}
	}
	return nil
}

// ParseRequirement reads "bootloader>=1.2.0" or "bootloader>=1.2.0 <2.0.0".
func ParseRequirement(s string) (verify.Requirement, error) {
	i := strings.IndexAny(s, "<>=")
	if i <= 0 {
		return verify.Requirement{}, fmt.Errorf("requirement %q: write COMPONENT followed by constraints, e.g. 'bootloader>=1.2.0' or 'bootloader>=1.2.0 <2.0.0'", s)
	}
	req := verify.Requirement{Component: strings.TrimSpace(s[:i]), Version: strings.TrimSpace(s[i:])}
	if err := checkRequirement(req); err != nil {
		return verify.Requirement{}, err
	}
	return req, nil
}

func checkRequirement(req verify.Requirement) error {
	if !wordRE.MatchString(req.Component) {
		return fmt.Errorf("requirement on %q: component must be a word like \"bootloader\"", req.Component)
	}
	fields := strings.Fields(req.Version)
	if len(fields) == 0 {
		return fmt.Errorf("requirement on %s: no version constraint; e.g. '>=1.2.0'", req.Component)
	}
	for _, c := range fields {
		m := constraintRE.FindStringSubmatch(c)
		if m == nil || !semverRE.MatchString(m[2]) {
			return fmt.Errorf("requirement on %s: constraint %q: use >=, >, =, <, <= followed by a semver version, e.g. '>=1.2.0'", req.Component, c)
		}
	}
	return nil
}

// CheckTargetMeta refuses custom metadata that verify would refuse, so that a mistake shows
// at the release desk and not in the field.
func CheckTargetMeta(m verify.TargetMeta) error {
	if len(m.HardwareIDs) == 0 {
		return errors.New("no hardware id; pass --hardware ID (e.g. acme-gw-r2), once per board the image fits")
	}
	for _, h := range m.HardwareIDs {
		if !wordRE.MatchString(h) {
			return fmt.Errorf("hardware id %q: use letters, digits, '.', '_' and '-'", h)
		}
	}
	if !semverRE.MatchString(m.Version) {
		return fmt.Errorf("version %q is not semver 2.0; e.g. 1.2.3, 1.2.3-rc.1, 1.2.3+45", m.Version)
	}
	if !wordRE.MatchString(m.Component) {
		return fmt.Errorf("component %q: name what the image replaces, e.g. app, bootloader, radio", m.Component)
	}
	if m.Format != "" && !slices.Contains(Formats, m.Format) {
		return fmt.Errorf("format %q: use one of %s", m.Format, strings.Join(Formats, ", "))
	}
	for _, p := range m.Protocol.Protocols {
		if !slices.Contains(Protocols, p) {
			return fmt.Errorf("protocol %q: use one of %s", p, strings.Join(Protocols, ", "))
		}
	}
	if s := m.Protocol.ImageSlot; s != nil && (*s < 0 || *s > 255) {
		return fmt.Errorf("image slot %d: must be 0..255", *s)
	}
	if a := m.Protocol.DFUAlt; a != nil && (*a < 0 || *a > 255) {
		return fmt.Errorf("DFU alt setting %d: must be 0..255", *a)
	}
	for _, req := range m.Requires {
		if err := checkRequirement(req); err != nil {
			return err
		}
		if req.Component == m.Component {
			return fmt.Errorf("requirement on %s: an image cannot require its own component", req.Component)
		}
	}
	for _, a := range m.Advisories {
		if !wordRE.MatchString(a) {
			return fmt.Errorf("advisory id %q: use letters, digits, '.', '_' and '-', e.g. ACME-SA-2026-07", a)
		}
	}
	return nil
}

// CustomJSON is the "custom" object of a target: {"fieldflash": meta}.
func CustomJSON(m verify.TargetMeta) (json.RawMessage, error) {
	return json.Marshal(map[string]verify.TargetMeta{verify.CustomKey: m})
}

// customWithChunks is the "custom" object of a target with its chunk hashes beside the
// metadata: {"fieldflash": meta, "fieldflash-chunks": {...}}. A target no longer than one
// chunk carries none: its whole-file hash already is its only chunk's hash.
func customWithChunks(m verify.TargetMeta, chunks *verify.Chunks) (json.RawMessage, error) {
	if chunks == nil || len(chunks.SHA256) < 2 {
		return CustomJSON(m)
	}
	return json.Marshal(map[string]any{verify.CustomKey: m, verify.ChunksKey: chunks})
}

// AddTarget copies the payload into targets/ and lists it, with its length, sha256 and
// custom metadata, in the chosen targets role. Listing a path again replaces the entry.
func (r *Repo) AddTarget(t NewTarget) (*metadata.TargetFiles, error) {
	if err := CheckTargetPath(t.Path); err != nil {
		return nil, err
	}
	if err := CheckTargetMeta(t.Meta); err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Path, err)
	}
	role := t.Role
	if role == "" {
		role = metadata.TARGETS
	}
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	var into *targetsRole
	for i := range roles {
		tr := &roles[i]
		if tr.Name == role {
			into = tr
			continue
		}
		if _, ok := tr.Meta.Signed.Targets[t.Path]; ok {
			return nil, fmt.Errorf("target %s: already listed by role %s; withdraw it there first (`fieldflash-release withdraw --path %s`)", t.Path, tr.Name, t.Path)
		}
	}
	if into == nil {
		return nil, fmt.Errorf("role %s: no such targets role; make it with `fieldflash-release delegate`", role)
	}
	// What verify refuses in the field is refused here, at the desk: every delegation on
	// the way to role must cover the path and allow the target's hardware.
	for r2, seen := role, map[string]bool{}; r2 != metadata.TARGETS && !seen[r2]; {
		seen[r2] = true
		from, delegator, i, err := r.findDelegation(r2)
		if err != nil {
			return nil, err
		}
		d := delegator.Signed.Delegations.Roles[i]
		if !verify.PathDelegated(&d, t.Path) {
			what := strings.Join(d.Paths, " ")
			if len(d.PathHashPrefixes) > 0 {
				what = "with hash prefixes " + strings.Join(d.PathHashPrefixes, " ")
			}
			return nil, fmt.Errorf("target %s: %s delegates to role %s only paths %s; pick a path inside them or another role", t.Path, from, r2, what)
		}
		allowed, confined, err := verify.DelegatedHardware(&d)
		if err != nil {
			return nil, fmt.Errorf("role %s: %v; delegate it again", r2, err)
		}
		for _, hw := range t.Meta.HardwareIDs {
			if confined && !slices.Contains(allowed, hw) {
				return nil, fmt.Errorf("target %s: %s delegates to role %s only hardware %s, not %s; sign it with a role delegated for %s", t.Path, from, r2, strings.Join(allowed, ", "), hw, hw)
			}
		}
		r2 = from
	}

	src, err := os.Open(t.File)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Path, err)
	}
	defer src.Close()
	dst := r.PayloadPath(t.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	var size int64
	if fi, err := src.Stat(); err == nil {
		size = fi.Size()
	}
	h := sha256.New()
	ch := verify.NewChunkHasher(verify.ChunkSizeFor(size))
	n, err := io.Copy(io.MultiWriter(tmp, h, ch), src)
	if err == nil && n != size {
		err = fmt.Errorf("it changed size while it was copied (%d bytes, then %d); copy it again once the build has finished writing it", size, n)
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: copying %s: %w", t.Path, t.File, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("target %s: %s is empty; an empty image cannot be flashed", t.Path, t.File)
	}
	// The image's own header (MCUboot, DFU suffix) must agree with what is about to be
	// signed: verify refuses a disagreement in the field, so refuse it here, at the desk.
	if err := checkImage(tmp.Name(), n, t.Meta); err != nil {
		return nil, fmt.Errorf("target %s: %s: %w", t.Path, t.File, err)
	}
	// Large targets are downloaded chunk by chunk: each chunk's hash is signed here, so a
	// mirror that sends a wrong byte is caught at that chunk (docs/bundle-format.md).
	chunks, _ := ch.Chunks()
	custom, err := customWithChunks(t.Meta, chunks)
	if err != nil {
		return nil, err
	}
	tf := &metadata.TargetFiles{
		Length: n,
		Hashes: metadata.Hashes{"sha256": h.Sum(nil)},
		Custom: &custom,
		Path:   t.Path,
	}
	m := into.Meta
	if old, ok := m.Signed.Targets[t.Path]; ok && equalJSON(old, tf) {
		return tf, os.Rename(tmp.Name(), dst) // nothing changed; keep the version and signatures
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, err
	}
	change(&m.Signatures, &m.Signed.Version)
	m.Signed.Targets[t.Path] = tf
	return tf, r.saveTargets(role, m)
}

// Withdraw removes a target from the role that lists it and deletes its payload. The
// resulting targets list is what verifiers that saw it treat as the revocation list: an
// older bundle carrying the withdrawn payload is refused on those machines.
func (r *Repo) Withdraw(path string) (role string, err error) {
	roles, err := r.targetsRoles()
	if err != nil {
		return "", err
	}
	for _, tr := range roles {
		if _, ok := tr.Meta.Signed.Targets[path]; !ok {
			continue
		}
		m := tr.Meta
		change(&m.Signatures, &m.Signed.Version)
		delete(m.Signed.Targets, path)
		if err := r.saveTargets(tr.Name, m); err != nil {
			return "", err
		}
		if err := os.Remove(r.PayloadPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return tr.Name, err
		}
		return tr.Name, nil
	}
	return "", fmt.Errorf("target %s: not listed by any role; `fieldflash-release status` lists the targets", path)
}

// Target is a listed target as the repository holds it.
type Target struct {
	Path   string            `json:"path"`
	Role   string            `json:"role"`
	Length int64             `json:"length"`
	SHA256 string            `json:"sha256"`
	Meta   verify.TargetMeta `json:"fieldflash"`
}

// Targets lists every target of every targets role, in TUF search order then path order;
// a path listed twice is reported where a client would find it first.
func (r *Repo) Targets() ([]Target, error) {
	roles, err := r.targetsRoles()
	if err != nil {
		return nil, err
	}
	var out []Target
	seen := map[string]bool{}
	for _, tr := range roles {
		paths := make([]string, 0, len(tr.Meta.Signed.Targets))
		for p := range tr.Meta.Signed.Targets {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			if seen[p] {
				continue
			}
			seen[p] = true
			tf := tr.Meta.Signed.Targets[p]
			t := Target{Path: p, Role: tr.Name, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
			t.Meta, _ = TargetMetaOf(tf)
			out = append(out, t)
		}
	}
	return out, nil
}

// TargetMetaOf reads custom.fieldflash of a target.
func TargetMetaOf(tf *metadata.TargetFiles) (verify.TargetMeta, error) {
	var custom map[string]json.RawMessage
	var m verify.TargetMeta
	if tf.Custom == nil {
		return m, errors.New("no custom metadata")
	}
	if err := json.Unmarshal(*tf.Custom, &custom); err != nil {
		return m, err
	}
	raw, ok := custom[verify.CustomKey]
	if !ok {
		return m, fmt.Errorf("no custom.%s", verify.CustomKey)
	}
	err := json.Unmarshal(raw, &m)
	return m, err
}

// checkImage runs verify's image checks on the payload copy.
func checkImage(file string, size int64, meta verify.TargetMeta) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = verify.CheckImage(f, size, meta)
	var ve *verify.Error
	if errors.As(err, &ve) {
		// verify's next steps speak to technicians ("ask the release team"); here the
		// release team is the reader.
		return fmt.Errorf("%s; fix --version, --counter or --format, or rebuild the image", ve.Reason)
	}
	return err
}
