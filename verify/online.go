package verify

import "github.com/theupdateframework/go-tuf/v2/metadata"

// What the online side (app/fetch, app/selfupdate) reads of targets metadata it trusted
// through go-tuf, with the same rules verification applies to a bundle, so that fetching
// never picks a target that verify would then refuse for its metadata.

// ParseTargetMeta reads and checks custom.fieldflash of a signed target.
func ParseTargetMeta(tf *metadata.TargetFiles) (TargetMeta, error) {
	m, e := parseTargetMeta(tf, "target "+tf.Path)
	if e != nil {
		return m, e
	}
	return m, nil
}

// CompareVersions orders two semver 2.0 versions by precedence (build metadata ignored):
// -1 when a is older than b, 0 when equal, 1 when newer.
func CompareVersions(a, b string) (int, error) {
	va, err := parseSemver(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseSemver(b)
	if err != nil {
		return 0, err
	}
	return va.compare(vb), nil
}
