#!/usr/bin/env bash
# The release as a vendor publishes it: a throwaway TUF repository (keys made here, for this
# check only), every executable of DIST added by packaging/release-targets.sh, signed,
# published and bundled with fieldflash-release, then the bundle verified by the fieldflash of
# DIST: each build must be listed for its platform with the very SHA-256 in DIST/SHA256SUMS.
#
#   packaging/check-release-targets.sh DIST
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(cd "${1:?usage: packaging/check-release-targets.sh DIST}" && pwd)
. packaging/check.sh
buildinfo "$dist"
case $(uname -m) in x86_64) host=linux-amd64 ;; aarch64 | arm64) host=linux-arm64 ;; *) echo "check-release-targets: no build for $(uname -m) here" >&2; exit 3 ;; esac
ff=$dist/fieldflash-$VERSION-$host
rel=$dist/fieldflash-release-$VERSION-$host

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export FIELDFLASH_REPO=$scratch/vendor FIELDFLASH_PASSPHRASE="test-only passphrase of check-release-targets" FIELDFLASH_HOME=$scratch/home
keys=$scratch/keys
mkdir -p "$keys"
echo "check-release-targets: fieldflash $VERSION into a throwaway vendor repository"
"$rel" --version >"$scratch/relversion" 2>&1 || true
check "fieldflash-release --version names $VERSION and commit $COMMIT" \
  bash -c 'grep -qx "fieldflash-release $2" "$1" && grep -q "commit  $3" "$1"' _ "$scratch/relversion" "$VERSION" "$COMMIT"
for k in root targets snapshot timestamp; do
  "$rel" keygen --type ed25519 --out "$keys/$k" >/dev/null
done
check "fieldflash-release init and sign root" bash -c '
  "$1" init --name "fieldflash packaging check" --root-key "$2/root" --targets-key "$2/targets" --snapshot-key "$2/snapshot" --timestamp-key "$2/timestamp" --expires 30d &&
  "$1" sign --role root --key "$2/root"' _ "$rel" "$keys"
check "packaging/release-targets.sh lists every build" bash packaging/release-targets.sh "$dist" --notes "packaging check"
check "sign, publish, bundle" bash -c '
  "$1" sign --role targets --key "$2/targets" && "$1" publish --snapshot-key "$2/snapshot" --timestamp-key "$2/timestamp" &&
  "$1" bundle --out "$3"' _ "$rel" "$keys" "$scratch/fieldflash-$VERSION.fwb"
check "fieldflash trust add the vendor root" "$ff" trust add "$FIELDFLASH_REPO/metadata/root.json" --name vendor --yes
check "fieldflash verify the release bundle" expect_exit 0 "$ff" verify "$scratch/fieldflash-$VERSION.fwb"
cp "$scratch/out" "$scratch/verdict"
while read -r sum name; do
  case $name in fieldflash-"$VERSION"-*) ;; *) continue ;; esac
  platform=${name#fieldflash-"$VERSION"-}
  platform=${platform%.exe}
  check "  $platform: fieldflash/$name, hardware $platform, its SHA-256" \
    contains "$scratch/verdict" "fieldflash/$name" "component    fieldflash $VERSION, release counter" "hardware     $platform" "$sum"
done <"$dist/SHA256SUMS"
# What self-update (docs/self-update.md) makes of that bundle: this very build, found by its
# platform among the five, the running version (so nothing to install).
own=$(awk -v n="fieldflash-$VERSION-$host" '$2 == n { print $1 }' "$dist/SHA256SUMS")
check "fieldflash self-update --check --from the bundle finds the $host build (exit 0)" \
  expect_exit 0 "$ff" self-update --check --from "$scratch/fieldflash-$VERSION.fwb" --json
check "  with this build's SHA-256, and as the running version" contains "$scratch/out" "$own" '"newer": false'
summary check-release-targets
