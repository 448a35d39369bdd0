package main

import (
	"os"
	"testing"

	"github.com/fieldflash/fieldflash/verify"
)

// verifyBundle checks that fieldflash itself accepts the bundle, pinned to the repository's
// first root as a laptop that shipped with it would be.
func verifyBundle(t *testing.T, bundle, rootFile string) *verify.Verified {
	t.Helper()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.VerifyFile(bundle, verify.Options{Roots: []verify.PinnedRoot{{Name: "Acme Devices", Root: root}}})
	if err != nil {
		t.Fatalf("fieldflash refuses the bundle the release tool made: %v", err)
	}
	if len(v.Targets) == 0 {
		t.Fatalf("verified bundle carries no targets: %+v", v)
	}
	return v
}

// verifyWithdrawn plays the field: a laptop that has seen the bundle made after the
// withdrawal must refuse the older bundle that still carries the withdrawn release.
func verifyWithdrawn(t *testing.T, newer, older, rootFile string) {
	t.Helper()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{Roots: []verify.PinnedRoot{{Name: "Acme Devices", Root: root}}, State: verify.NewMemoryState()}
	if _, err := verify.VerifyFile(older, opts); err != nil {
		t.Fatalf("the older bundle, before the laptop saw the withdrawal: %v", err)
	}
	if _, err := verify.VerifyFile(newer, opts); err != nil {
		t.Fatalf("the bundle made after the withdrawal: %v", err)
	}
	_, err = verify.VerifyFile(older, opts)
	if verify.CodeOf(err) != verify.CodeWithdrawn {
		t.Fatalf("the older bundle after the laptop saw the withdrawal: %v (code %q), want %q", err, verify.CodeOf(err), verify.CodeWithdrawn)
	}
}
