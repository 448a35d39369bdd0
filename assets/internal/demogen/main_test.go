package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The embedded demo bundle must be exactly what this generator writes: a stale or
// hand-edited demo bundle fails here.
func TestCommittedDemoBundleIsWhatTheGeneratorWrites(t *testing.T) {
	out := t.TempDir()
	if err := run(out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"demo.fwb", "root.json"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", "demo", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("assets/demo/%s differs from the generator's output; run `make corpus` and commit", name)
		}
	}
}
