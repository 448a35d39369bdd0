package fetch

import (
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/fieldflash/fieldflash/verify"
)

// Release is one target the trusted metadata lists, with its signed fieldflash metadata.
type Release struct {
	Path   string            `json:"path"`
	Role   string            `json:"role"`
	Length int64             `json:"length"`
	SHA256 string            `json:"sha256"`
	Meta   verify.TargetMeta `json:"fieldflash"`
	// Chunked is set when the target's chunk hashes are signed, so a download is checked
	// chunk by chunk.
	Chunked bool `json:"chunked"`

	tf *metadata.TargetFiles
}

// releases lists every target that counts: each path from the role that TUF's pre-order
// depth-first walk of the delegations reaches first (the same rule verify applies to a
// bundle), with custom.fieldflash that verify would accept. Targets that fail those rules
// are skipped and named in skipped.
func releases(tm *trustedmetadata.TrustedMetadata, order []string, maxRoles int) (out []Release, skipped []string) {
	seen := map[string]bool{}
	for _, role := range order {
		m := tm.Targets[role]
		for _, path := range slices.Sorted(maps.Keys(m.Signed.Targets)) {
			if seen[path] {
				continue
			}
			seen[path] = true
			gov, tf := governing(tm, path, maxRoles)
			if tf == nil {
				skipped = append(skipped, path+" (no role on the delegation walk may sign it)")
				continue
			}
			sum, ok := tf.Hashes["sha256"]
			if !ok || len(sum) != 32 {
				skipped = append(skipped, path+" (no sha256 listed)")
				continue
			}
			meta, err := verify.ParseTargetMeta(tf)
			if err != nil {
				skipped = append(skipped, path+" ("+err.Error()+")")
				continue
			}
			r := Release{Path: path, Role: gov, Length: tf.Length, SHA256: hex.EncodeToString(sum), Meta: meta, tf: tf}
			if tf.Custom != nil {
				if c, err := verify.ParseChunks(*tf.Custom, tf.Length); err == nil && c != nil {
					r.Chunked = true
				}
			}
			out = append(out, r)
		}
	}
	return out, skipped
}

// governing walks the delegations for path as go-tuf's updater does (pre-order, depth
// first, terminating delegations end the walk) and returns the first role listing it.
func governing(tm *trustedmetadata.TrustedMetadata, path string, maxRoles int) (string, *metadata.TargetFiles) {
	stack := []string{metadata.TARGETS}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= maxRoles {
		role := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[role] {
			continue
		}
		m := tm.Targets[role]
		if m == nil {
			return "", nil // a role the walk needs was not loaded: the path cannot be judged
		}
		if tf, ok := m.Signed.Targets[path]; ok {
			return role, tf
		}
		visited[role] = true
		if d := m.Signed.Delegations; d != nil {
			var children []string
			for _, r := range d.GetRolesForTarget(path) {
				children = append(children, r.Name)
				if r.Terminating {
					stack = nil
					break
				}
			}
			slices.Reverse(children)
			stack = append(stack, children...)
		}
	}
	return "", nil
}

// pick chooses, for each hardware id, the newest release of each component that lists it:
// highest version, then highest release counter. The result has each target once, in the
// order of hardware ids and then components.
func pick(all []Release, hardware []string) (picked []Release, missing []string) {
	have := map[string]bool{}
	for _, hw := range hardware {
		best := map[string]Release{}
		var components []string
		for _, r := range all {
			if !slices.Contains(r.Meta.HardwareIDs, hw) {
				continue
			}
			b, ok := best[r.Meta.Component]
			if !ok {
				components = append(components, r.Meta.Component)
			}
			if !ok || newer(r, b) {
				best[r.Meta.Component] = r
			}
		}
		if len(best) == 0 {
			missing = append(missing, hw)
			continue
		}
		slices.Sort(components)
		for _, c := range components {
			r := best[c]
			if !have[r.SHA256] {
				have[r.SHA256] = true
				picked = append(picked, r)
			}
		}
	}
	return picked, missing
}

// newer orders releases of one component: version first, then release counter, then path
// (so the choice never depends on map order).
func newer(a, b Release) bool {
	if c, err := verify.CompareVersions(a.Meta.Version, b.Meta.Version); err == nil && c != 0 {
		return c > 0
	}
	if a.Meta.ReleaseCounter != b.Meta.ReleaseCounter {
		return a.Meta.ReleaseCounter > b.Meta.ReleaseCounter
	}
	return strings.Compare(a.Path, b.Path) > 0
}

// hardwareIDs lists every hardware id the releases name, sorted.
func hardwareIDs(all []Release) []string {
	set := map[string]bool{}
	for _, r := range all {
		for _, h := range r.Meta.HardwareIDs {
			set[h] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
