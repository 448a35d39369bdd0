#!/usr/bin/env bash
# Installs the tar.xz that fyne package made the way its own Makefile says (`make
# user-install`, into a scratch home), and runs the installed fieldflash.
#
#   packaging/check-tarxz.sh DIST
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dist=$(cd "${1:?usage: packaging/check-tarxz.sh DIST}" && pwd)
. packaging/check.sh
buildinfo "$dist"
arch=$(dpkg --print-architecture 2>/dev/null || go env GOARCH)
tarball=$dist/fieldflash-$VERSION-linux-$arch.tar.xz
if [ ! -f "$tarball" ]; then
  echo "check-tarxz: no $(basename "$tarball") (BUILDINFO: $(grep '^gui' "$dist/BUILDINFO")): the desktop app was not built"
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "check-tarxz: $(basename "$tarball")"
check "tar -xJf unpacks it" tar -xJf "$tarball" -C "$scratch"
check "make user-install (its Makefile) installs binary, menu entry and icon" bash -c '
  make -s -C "$1/fieldflash" user-install HOME="$1/home" >/dev/null &&
  test -x "$1/home/.local/bin/fieldflash" && ls "$1/home/.local/share/applications/"*.desktop >/dev/null &&
  ls "$1/home/.local/share/icons/"*.png >/dev/null' _ "$scratch"
"$scratch/home/.local/bin/fieldflash" --version >"$scratch/version" 2>&1 || true
check "the installed fieldflash --version prints version, commit and build date" \
  contains "$scratch/version" "fieldflash $VERSION" "commit  $COMMIT" "built   $BUILD_DATE"
check "the installed fieldflash verify --demo on the demo bundle exits 0" \
  expect_exit 0 env FIELDFLASH_HOME="$scratch/state" "$scratch/home/.local/bin/fieldflash" verify --demo "$repo/assets/demo/demo.fwb"
check "it is the same binary as fieldflash-$VERSION-linux-$arch" cmp "$scratch/home/.local/bin/fieldflash" "$dist/fieldflash-$VERSION-linux-$arch"
summary check-tarxz
