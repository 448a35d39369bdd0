// Package cache is fieldflash's content-addressed store of downloaded targets, under
// $FIELDFLASH_HOME/cache. A target lives in targets/<sha256>, named by the SHA-256 of its
// bytes, so two bundles that carry the same image share one file, and a file is found by
// the hash its signed metadata names. A download in progress lives in partial/<sha256>
// and is checked as it grows (chunk by chunk where the target's metadata signs chunk
// hashes, docs/bundle-format.md); it moves under its hash name only once its length and
// every listed hash matched, so the store never holds an unverified file under a hash
// name, whatever happens to the process.
//
// The cache also keeps every root version seen online, per pinned root (the key the trusted
// state uses, repository@pin), so that a bundle assembled from it carries the whole root
// chain (metadata/<repository>@<pin>/).
package cache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/fieldflash/fieldflash/verify/bundle"
)

// Cache is the store under one home.
type Cache struct {
	dir string
}

// Open opens (creating if needed) the cache under home.
func Open(home string) (*Cache, error) {
	dir := filepath.Join(home, "cache")
	for _, sub := range []string{"targets", "partial", "metadata"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("cache %s: %v; check that %s is writable", dir, err, home)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Path is where the verified target with this SHA-256 lives (whether or not it is there).
func (c *Cache) Path(sha256 string) string { return filepath.Join(c.dir, "targets", sha256) }

// Has reports whether the verified target with this SHA-256 and length is in the cache.
func (c *Cache) Has(sha256 string, length int64) bool {
	if !bundle.IsSHA256Hex(sha256) {
		return false
	}
	fi, err := os.Stat(c.Path(sha256))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == length
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,150}$`)

// repoDir keeps readable repository names readable and encodes any other, so no name can
// reach outside the cache.
func (c *Cache) repoDir(repository string) string {
	name := repository
	if !plainName.MatchString(name) || strings.Contains(name, "..") {
		name = "x-" + hex.EncodeToString([]byte(repository))
	}
	return filepath.Join(c.dir, "metadata", name)
}

// SaveRoot keeps root version v of repository, as the raw bytes that were verified.
func (c *Cache) SaveRoot(repository string, v int64, raw []byte) error {
	if v < 1 {
		return fmt.Errorf("root version %d: versions start at 1", v)
	}
	return writeFileAtomic(filepath.Join(c.repoDir(repository), strconv.FormatInt(v, 10)+".root.json"), raw)
}

// Roots returns every root version of repository kept here.
func (c *Cache) Roots(repository string) (map[int64][]byte, error) {
	dir := c.repoDir(repository)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[int64][]byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[int64][]byte{}
	for _, e := range entries {
		s, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || strconv.FormatInt(v, 10) != s {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[v] = b
	}
	return out, nil
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync of the folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}
