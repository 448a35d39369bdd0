package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Image formats a target may declare in TargetMeta.Format.
var knownFormats = []string{"", "raw", "mcuboot", "dfu", "dfuse"}

// parseTargetMeta reads custom.fieldflash of a target and checks that it says what every
// later check relies on. thing names the target for messages.
func parseTargetMeta(tf *metadata.TargetFiles, thing string) (TargetMeta, *Error) {
	const next = "ask the release team to rebuild the bundle with fieldflash-release"
	var meta TargetMeta
	if tf.Custom == nil {
		return meta, errorf(CodeMetadata, thing, next, "the signed target has no custom.%s metadata", CustomKey)
	}
	var custom map[string]json.RawMessage
	if err := json.Unmarshal(*tf.Custom, &custom); err != nil {
		return meta, errorf(CodeMetadata, thing, next, "custom metadata is not a JSON object: %v", err)
	}
	raw, ok := custom[CustomKey]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return meta, errorf(CodeMetadata, thing, next, "the signed target has no custom.%s metadata", CustomKey)
	}
	if err := checkCustomKeys(raw); err != nil {
		return meta, errorf(CodeMetadata, thing, next, "custom.%s: %v", CustomKey, err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return meta, errorf(CodeMetadata, thing, next, "custom.%s does not decode: %v", CustomKey, err)
	}
	if err := checkTargetMeta(&meta); err != nil {
		return meta, errorf(CodeMetadata, thing, next, "custom.%s: %v", CustomKey, err)
	}
	return meta, nil
}

// The keys custom.fieldflash may hold. A key fieldflash does not know is refused: a typo
// ("hardware_id", "release_countr") must not silently drop a check. Keys that start with
// "x-" are a vendor's own and are ignored. release_counter is required: anti-rollback is
// never left to a default.
var (
	metaKeys        = []string{"hardware_ids", "version", "release_counter", "component", "format", "protocol", "requires", "release_notes", "advisories"}
	protocolKeys    = []string{"protocols", "image_slot", "dfu_alt", "address", "usb_vendor", "usb_product"}
	requirementKeys = []string{"component", "version"}
)

func checkCustomKeys(raw json.RawMessage) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	if err := knownKeys(top, metaKeys, ""); err != nil {
		return err
	}
	if rc, ok := top["release_counter"]; !ok || bytes.Equal(bytes.TrimSpace(rc), []byte("null")) {
		return fmt.Errorf("release_counter is missing; write 0 for an image without anti-rollback (for MCUboot images: the image's security counter)")
	}
	if p, ok := top["protocol"]; ok && !bytes.Equal(bytes.TrimSpace(p), []byte("null")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("protocol is not a JSON object: %v", err)
		}
		if err := knownKeys(m, protocolKeys, "protocol."); err != nil {
			return err
		}
	}
	if r, ok := top["requires"]; ok && !bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(r, &list); err != nil {
			return fmt.Errorf("requires is not a list of objects: %v", err)
		}
		for _, m := range list {
			if err := knownKeys(m, requirementKeys, "requires[]."); err != nil {
				return err
			}
		}
	}
	return nil
}

func knownKeys(m map[string]json.RawMessage, known []string, prefix string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) && !strings.HasPrefix(k, "x-") {
			return fmt.Errorf("unknown key %q; known keys are %s (a vendor's own keys start with \"x-\")", prefix+k, strings.Join(known, ", "))
		}
	}
	return nil
}

func checkTargetMeta(m *TargetMeta) error {
	if len(m.HardwareIDs) == 0 {
		return fmt.Errorf("hardware_ids is empty: the image must name the hardware it fits")
	}
	for _, id := range m.HardwareIDs {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("hardware_ids holds an empty id")
		}
	}
	if _, err := parseSemver(m.Version); err != nil {
		return fmt.Errorf("version: %v", err)
	}
	if strings.TrimSpace(m.Component) == "" {
		return fmt.Errorf("component is empty")
	}
	if !slices.Contains(knownFormats, m.Format) {
		return fmt.Errorf("format %q is none of raw, mcuboot, dfu, dfuse", m.Format)
	}
	for _, r := range m.Requires {
		if strings.TrimSpace(r.Component) == "" {
			return fmt.Errorf("a requirement names no component")
		}
		if _, err := parseConstraint(r.Version); err != nil {
			return fmt.Errorf("requirement on %s: %v", r.Component, err)
		}
	}
	return nil
}

// fitHardware keeps, for the device's hardware, the targets that list it. A payload can be
// signed under several paths, one per hardware revision: it fits when one of them lists
// the hardware. A payload none of whose targets does is refused.
func fitHardware(targets []Target, hw string) ([]Target, *Error) {
	if hw == "" {
		return targets, nil
	}
	var fit []Target
	for i := 0; i < len(targets); {
		j := i
		for j < len(targets) && targets[j].SHA256 == targets[i].SHA256 {
			j++
		}
		group := targets[i:j]
		before := len(fit)
		var made []string
		for _, t := range group {
			if slices.Contains(t.Meta.HardwareIDs, hw) {
				fit = append(fit, t)
			}
			made = append(made, strings.Join(t.Meta.HardwareIDs, ", "))
		}
		if len(fit) == before {
			var paths []string
			for _, t := range group {
				paths = append(paths, t.Path)
			}
			return nil, errorf(CodeHardware, "payload "+strings.Join(paths, ", "), "pick the bundle built for "+hw,
				"made for %s, not for this device's hardware %s", strings.Join(made, "; "), hw)
		}
		i = j
	}
	return fit, nil
}

// checkDevice checks the targets against the device's facts in opts and against the other
// components the bundle carries, and returns the targets that fit the device.
func checkDevice(targets []Target, opts Options) ([]Target, *Error) {
	targets, e := fitHardware(targets, opts.Hardware)
	if e != nil {
		return nil, e
	}
	for _, t := range targets {
		thing := "payload " + t.Path
		if opts.CurrentCounter != nil && t.Meta.ReleaseCounter < *opts.CurrentCounter {
			return nil, errorf(CodeReleaseCounter, thing, "pick a release with counter "+fmt.Sprint(*opts.CurrentCounter)+" or higher",
				"release counter %d is below the device's %d: the device refuses to go back to it", t.Meta.ReleaseCounter, *opts.CurrentCounter)
		}
	}
	// What the device will run once this bundle is flashed: the bundle's components
	// replace the installed ones.
	carried := map[string]string{}
	for _, t := range targets {
		carried[t.Meta.Component] = t.Meta.Version
	}
	for _, t := range targets {
		thing := "payload " + t.Path
		for _, req := range t.Meta.Requires {
			c, err := parseConstraint(req.Version)
			if err != nil { // checked when the metadata was read; kept for safety
				return nil, errorf(CodeMetadata, thing, "ask the release team to fix the requirement", "requirement on %s: %v", req.Component, err)
			}
			have, where := carried[req.Component], "this bundle carries"
			if have == "" {
				if opts.Installed == nil {
					continue
				}
				var ok bool
				have, ok = opts.Installed[req.Component]
				where = "the device has"
				if !ok {
					return nil, errorf(CodeRequirement, thing, "install a "+req.Component+" "+req.Version+" first",
						"requires %s %s, but the device reports no %s", req.Component, req.Version, req.Component)
				}
			}
			v, err := parseSemver(have)
			if err != nil {
				return nil, errorf(CodeRequirement, thing, "update the "+req.Component+" first or check the device",
					"requires %s %s, but %s %s %q, which is not a semantic version", req.Component, req.Version, where, req.Component, have)
			}
			if !c.allows(v) {
				return nil, errorf(CodeRequirement, thing, fmt.Sprintf("flash a %s %s first, or pick a bundle that carries one", req.Component, req.Version),
					"requires %s %s, but %s %s %s", req.Component, req.Version, where, req.Component, have)
			}
		}
	}
	return targets, nil
}
