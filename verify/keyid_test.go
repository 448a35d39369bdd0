package verify

import (
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A delegation that lists an attacker's key under the id of the product key it means is
// refused: a key id is computed from its key, never taken on trust, so the signer shown
// is the key that signed.
func TestDelegationListingAKeyUnderAnotherKeysIDIsRefused(t *testing.T) {
	r := fxNewRepo(t)
	vendor, mallory := fxNewKey(t, "acme-gw-product"), fxNewKey(t, "mallory")
	r.delegate("acme-gw", []string{"acme-gw/*"}, 1, false, vendor)
	r.targets.Signed.Delegations.Keys[vendor.id] = mallory.key
	r.signers["acme-gw"] = []fxKey{mallory}
	r.tamper["acme-gw"] = func(sigs *[]metadata.Signature, _ any) { (*sigs)[0].KeyID = vendor.id }
	r.addTarget("acme-gw", "acme-gw/app.bin", []byte("mallory's app"), fxMeta())
	e := fxRefusal(t, r.write("forged-key-id.fwb"), r.opts(nil), CodeMetadata)
	fxSays(t, e, "targets.json", "under the id "+vendor.id[:8], "own id", mallory.id[:8])
}

// The same in a root the bundle rotates to.
func TestRootListingAKeyUnderAnotherKeysIDIsRefused(t *testing.T) {
	r, _ := fxBasic(t)
	vendor, mallory := r.signers["targets"][0], fxNewKey(t, "mallory")
	r.rotateRoot(func(s *metadata.RootType) { s.Keys[vendor.id] = mallory.key }, r.rootKeys...)
	r.signers["targets"] = []fxKey{mallory}
	r.tamper["targets"] = func(sigs *[]metadata.Signature, _ any) { (*sigs)[0].KeyID = vendor.id }
	e := fxRefusal(t, r.write("forged-root-key-id.fwb"), r.opts(nil), CodeMetadata)
	fxSays(t, e, "2.root.json", "under the id "+vendor.id[:8], "own id")
}

// A pinned root that holds a demo key is a demo root, under whatever id it lists the key:
// anyone can sign with the demo keys, so it is trusted in demo mode only.
func TestRootHoldingADemoKeyUnderAnotherIDIsTrustedOnlyInDemoMode(t *testing.T) {
	demo, _ := fxBasic(t)
	r := fxNewRepo(t)
	demoTargets := demo.signers["targets"][0]
	alias, aliasKey := fxAlias(t, demoTargets, "demo key, second id")
	r.root.Signed.Keys[alias] = aliasKey
	r.root.Signed.Roles["targets"].KeyIDs = []string{alias}
	fxSign(t, r.root, r.rootKeys...)
	r.roots[1] = fxBytes(t, r.root)
	r.signers["targets"] = []fxKey{demoTargets}
	r.tamper["targets"] = func(sigs *[]metadata.Signature, _ any) { (*sigs)[0].KeyID = alias }
	r.addTarget("targets", "acme-gw/app.bin", []byte("signed by a public key"), fxMeta())
	path := r.write("demo-key.fwb")
	opts := r.opts(nil)
	opts.Roots = append(opts.Roots, PinnedRoot{Name: "fieldflash-demo", Root: demo.roots[1], Demo: true})
	e := fxRefusal(t, path, opts, CodeUntrusted)
	fxSays(t, e, "demo")
}
