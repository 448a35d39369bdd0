// Package assets holds what is built into the fieldflash binary: trust roots pinned at
// build time (roots/*.root.json) and the demo bundle with its demo-only root (demo/).
package assets

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed roots
var roots embed.FS

// NamedRoot is a root.json shipped inside the binary.
type NamedRoot struct {
	Name string // the repository, from the file name
	Root []byte
}

// EmbeddedRoots returns the roots pinned at build time, sorted by name.
func EmbeddedRoots() []NamedRoot {
	var out []NamedRoot
	entries, _ := fs.ReadDir(roots, "roots")
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".root.json") {
			continue
		}
		data, err := roots.ReadFile(path.Join("roots", e.Name()))
		if err != nil {
			continue
		}
		out = append(out, NamedRoot{Name: strings.TrimSuffix(e.Name(), ".root.json"), Root: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
