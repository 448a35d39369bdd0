// Command demogen makes the demo bundle and its demo root (assets/demo/), deterministically:
// the same source always gives byte-identical files, so `make corpus` shows no diff.
//
// The demo keys are derived from public seeds below. They exist only for the demo: anyone
// can re-derive them, which is why the demo root is trusted in demo mode only.
package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fieldflash/fieldflash/verify"
	"github.com/fieldflash/fieldflash/verify/bundle"
	"github.com/fieldflash/fieldflash/verify/mcuboot"
)

// Hardware ids of the virtual devices `fieldflash sim` starts.
const (
	HardwareSMP    = "fieldflash-sim-smp"
	HardwareYMODEM = "fieldflash-sim-ymodem"
)

var expires = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)

func demoKey(role string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("fieldflash-demo-only-key-" + role))
	return ed25519.NewKeyFromSeed(seed[:])
}

// firmware returns n bytes that look like an image and never change.
func firmware(name string, n int) []byte {
	out := make([]byte, 0, n+32)
	block := sha256.Sum256([]byte(name))
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}

func main() {
	out := flag.String("out", "assets/demo", "output directory")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "demogen:", err)
		os.Exit(1)
	}
}

func sign[T metadata.Roles](m *metadata.Metadata[T], key ed25519.PrivateKey) error {
	s, err := signature.LoadSigner(key, crypto.Hash(0))
	if err != nil {
		return err
	}
	_, err = m.Sign(s)
	return err
}

type payload struct {
	path string
	data []byte
	meta verify.TargetMeta
}

func intp(i int) *int { return &i }

func run(out string) error {
	counter := uint32(2)
	smpImage, err := mcuboot.Build(firmware("demo-smp-app-1.1.0", 48*1024), mcuboot.BuildOptions{
		Version:         mcuboot.Version{Major: 1, Minor: 1, Revision: 0},
		SecurityCounter: &counter,
	})
	if err != nil {
		return err
	}
	payloads := []payload{
		{"demo/sim-smp/app.bin", smpImage, verify.TargetMeta{
			HardwareIDs: []string{HardwareSMP}, Version: "1.1.0", ReleaseCounter: 2, Component: "app", Format: "mcuboot",
			Protocol:     verify.ProtocolHints{Protocols: []string{"smp"}, ImageSlot: intp(0)},
			ReleaseNotes: "Demo release for the virtual MCUboot device: faster boot, fixes the watchdog reset.",
			Advisories:   []string{"DEMO-SA-2026-01"},
		}},
		{"demo/sim-ymodem/app.bin", firmware("demo-ymodem-app-1.1.0", 48*1024), verify.TargetMeta{
			HardwareIDs: []string{HardwareYMODEM}, Version: "1.1.0", ReleaseCounter: 2, Component: "app", Format: "raw",
			Protocol:     verify.ProtocolHints{Protocols: []string{"ymodem"}},
			ReleaseNotes: "Demo release for the virtual classic-bootloader device.",
		}},
	}

	root := metadata.Root(expires)
	root.Signed.UnrecognizedFields = map[string]any{"x-fieldflash-repository": "fieldflash-demo"}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		k, err := metadata.KeyFromPublicKey(demoKey(role).Public())
		if err != nil {
			return err
		}
		if err := root.Signed.AddKey(k, role); err != nil {
			return err
		}
	}
	if err := sign(root, demoKey("root")); err != nil {
		return err
	}

	targets := metadata.Targets(expires)
	var sources []bundle.PayloadSource
	for _, p := range payloads {
		custom, err := json.Marshal(map[string]any{verify.CustomKey: p.meta})
		if err != nil {
			return err
		}
		raw := json.RawMessage(custom)
		tf, err := metadata.TargetFile().FromBytes(p.path, p.data, "sha256")
		if err != nil {
			return err
		}
		tf.Custom = &raw
		targets.Signed.Targets[p.path] = tf
		sum := sha256.Sum256(p.data)
		data := p.data
		sources = append(sources, bundle.PayloadSource{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
	}
	if err := sign(targets, demoKey("targets")); err != nil {
		return err
	}
	targetsBytes, err := targets.ToBytes(true)
	if err != nil {
		return err
	}
	snapshot := metadata.Snapshot(expires)
	snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(targets.Signed.Version)
	if err := sign(snapshot, demoKey("snapshot")); err != nil {
		return err
	}
	snapshotBytes, err := snapshot.ToBytes(true)
	if err != nil {
		return err
	}
	timestamp := metadata.Timestamp(expires)
	timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(snapshot.Signed.Version)
	if err := sign(timestamp, demoKey("timestamp")); err != nil {
		return err
	}
	timestampBytes, err := timestamp.ToBytes(true)
	if err != nil {
		return err
	}
	rootBytes, err := root.ToBytes(true)
	if err != nil {
		return err
	}

	var buf bytes.Buffer
	if err := bundle.Write(&buf, &bundle.Contents{
		Roots:     map[int64][]byte{1: rootBytes},
		Timestamp: timestampBytes, Snapshot: snapshotBytes, Targets: targetsBytes,
		Payloads: sources,
	}); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "root.json"), rootBytes, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "demo.fwb"), buf.Bytes(), 0o644)
}
