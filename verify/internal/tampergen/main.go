// Command tampergen writes fieldflash's bundle test corpus: verify/testdata/*.fwb, one file
// per attack or good case listed in the tamper table, the prime_*.fwb bundles that put a
// machine's State where some cases need it, and the pinned test root (root.json).
//
// Everything is deterministic: keys come from fixed seeds (sha256 of
// "fieldflash-test-<name>"; TEST KEYS, public by construction), dates are fixed, and ed25519
// signatures and bundle.Write are deterministic, so running it twice gives the same bytes.
// A test compares a fresh run with the committed files, so a stale corpus fails CI.
//
//	go run ./verify/internal/tampergen -out verify/testdata -vectors testdata
//
// -vectors is the repository's testdata/ folder, whose mcuboot/ and dfu/ hold the upstream
// imgtool and dfu-util vectors some bundles carry as payloads.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "verify/testdata", "folder to write the corpus to")
	vectors := flag.String("vectors", "testdata", "the folder holding the upstream vectors in mcuboot/ and dfu/ (the repository's testdata/)")
	flag.Parse()
	n, err := writeCorpus(*out, *vectors)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tampergen:", err)
		os.Exit(1)
	}
	fmt.Printf("tampergen: wrote %d files to %s\n", n, *out)
}

// writeCorpus generates every file and writes it into out.
func writeCorpus(out, vectors string) (int, error) {
	files, err := generate(vectors)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(out, f.name), f.data, 0o644); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}
