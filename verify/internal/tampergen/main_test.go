package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's upstream vectors and the committed corpus, from this package's folder.
const (
	vectorsDir = "../../../testdata"
	corpusDir  = "../../testdata"
)

// TestCommittedCorpusIsWhatTheGeneratorWrites generates the corpus into a fresh folder and
// compares it, byte for byte, with verify/testdata. It fails when the committed corpus is
// stale (the generator or the bundle writer changed without regenerating), when a vector
// was edited by hand, and when the generator stops being deterministic.
func TestCommittedCorpusIsWhatTheGeneratorWrites(t *testing.T) {
	out := t.TempDir()
	if _, err := writeCorpus(out, vectorsDir); err != nil {
		t.Fatal(err)
	}
	fresh := listCorpus(t, out)
	committed := listCorpus(t, corpusDir)
	const regenerate = "run make corpus"
	for name := range fresh {
		if _, ok := committed[name]; !ok {
			t.Errorf("%s is missing from verify/testdata; %s", name, regenerate)
		}
	}
	for name := range committed {
		if _, ok := fresh[name]; !ok {
			t.Errorf("verify/testdata/%s is not written by the generator; delete it or add it to the generator", name)
		}
	}
	for name, path := range fresh {
		if _, ok := committed[name]; !ok {
			continue
		}
		a, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(committed[name])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("verify/testdata/%s differs from what the generator writes now; %s", name, regenerate)
		}
	}
}

// listCorpus maps the corpus file names in dir (bundles and the pinned root) to their paths.
func listCorpus(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.Type().IsRegular() && (strings.HasSuffix(e.Name(), ".fwb") || e.Name() == "root.json") {
			files[e.Name()] = filepath.Join(dir, e.Name())
		}
	}
	return files
}

func TestGeneratorSaysWhereTheVectorsShouldBe(t *testing.T) {
	_, err := generate(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "-vectors") {
		t.Fatalf("got %v, want an error pointing at -vectors", err)
	}
}
