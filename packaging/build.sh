#!/usr/bin/env bash
# Builds every release artifact of fieldflash into OUT (default dist/), reproducibly: the same
# commit built in any directory, at any time, by any user gives byte-identical files
# (docs/packaging.md). `make release` runs it and prints the SHA-256 of each artifact;
# packaging/repro.sh runs it twice in two directories and compares.
#
#   packaging/build.sh [OUT]
#
# What makes the bytes the same:
#   -trimpath          no directory of this machine in the binaries
#   -buildvcs=false    the stamp comes from packaging/stamp.sh, not from the state of .git
#   -ldflags=-buildid= no build id (the linker's default is derived from content, but say so)
#   SOURCE_DATE_EPOCH  the commit's time: the build date printed by --version, every time in
#                      the packages (ar members, tar entries are set to it)
#   dpkg-deb           --root-owner-group, entries sorted, --threads-max=1 for xz
#   the toolchain      GOFLAGS, GOAMD64, GOARM64, GOEXPERIMENT fixed; the same Go version gives
#                      the same bytes, so BUILDINFO names it
#
# Environment: VERSION, COMMIT, SOURCE_DATE_EPOCH, RELEASE_COUNTER (see packaging/stamp.sh),
# DEB_MAINTAINER, PLATFORMS (default: all of them, "linux/amd64 linux/arm64 windows/amd64
# darwin/arm64 darwin/amd64").
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
eval "$(bash packaging/stamp.sh)"
export SOURCE_DATE_EPOCH LC_ALL=C TZ=UTC
umask 022

# The Go toolchain's own knobs, fixed so that nothing in the caller's environment or go env
# file changes the output.
export GOFLAGS="" GOTOOLCHAIN=local GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT="" GOPATH="$(go env GOPATH)"
unset GOOS GOARCH CC CXX CGO_CFLAGS CGO_LDFLAGS 2>/dev/null || true

PLATFORMS=${PLATFORMS:-"linux/amd64 linux/arm64 windows/amd64 darwin/arm64 darwin/amd64"}
DEB_MAINTAINER=${DEB_MAINTAINER:-"fieldflash maintainers <maintainers@users.noreply.r-seed-a882feab.example>"}
cli=github.com/fieldflash/fieldflash/cli
ldflags="-s -w -buildid= -X $cli.Version=$VERSION -X $cli.Commit=$COMMIT -X $cli.BuildDate=$BUILD_DATE -X $cli.ReleaseCounter=$RELEASE_COUNTER"

# Old artifacts of another version must not be listed with the new ones.
find "$out" -mindepth 1 -maxdepth 1 \( -name 'fieldflash*' -o -name SHA256SUMS -o -name BUILDINFO \) -exec rm -rf {} +

step() { printf 'build: %s\n' "$*" >&2; }

# gobuild GOOS GOARCH CGO OUTFILE PACKAGE [go build flags...]
gobuild() {
  local os=$1 arch=$2 cgo=$3 file=$4 pkg=$5
  shift 5
  GOOS=$os GOARCH=$arch CGO_ENABLED=$cgo go build -trimpath -buildvcs=false -ldflags "$ldflags" "$@" -o "$file" "$pkg"
}

exe() { [ "$1" = windows ] && echo .exe || true; }

for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  step "fieldflash and fieldflash-release for $os/$arch (CGO_ENABLED=0: the command line)"
  gobuild "$os" "$arch" 0 "$out/fieldflash-$VERSION-$os-$arch$(exe "$os")" .
  gobuild "$os" "$arch" 0 "$out/fieldflash-release-$VERSION-$os-$arch$(exe "$os")" ./cmd/fieldflash-release
done

# deb ARCH BINARY: the Debian package. Files are staged with fixed modes and times and
# dpkg-deb makes the archive with root:root owners and sorted entries.
deb() {
  local arch=$1 bin=$2 stage
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  chmod 0755 "$stage" # mktemp's 0700 would become the mode of / in the package
  install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/udev/rules.d"
  install -m 0755 "$bin" "$stage/usr/bin/fieldflash"
  install -m 0644 packaging/linux/udev/*.rules "$stage/usr/lib/udev/rules.d/"
  install -m 0755 packaging/linux/deb/postinst packaging/linux/deb/postrm "$stage/DEBIAN/"

  # Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, one per other entry.
  local size
  size=$(find "$stage" -path "$stage/DEBIAN" -prune -o -mindepth 1 -printf '%y %s\n' |
    awk '$1 == "f" { k += int(($2 + 1023) / 1024); next } { k += 1 } END { print k }')
  sed -e "s|@DEB_VERSION@|$DEB_VERSION|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$DEB_MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@||" packaging/linux/deb/control.in >"$stage/DEBIAN/control"
  (cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
  find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  local threads=()
  dpkg-deb --help 2>&1 | grep -q -- --threads-max && threads=(--threads-max=1)
  dpkg-deb --root-owner-group -Zxz "${threads[@]}" --build "$stage" "$out/fieldflash_${DEB_VERSION}_$arch.deb" >/dev/null
}

for p in $PLATFORMS; do
  case $p in
  linux/amd64 | linux/arm64)
    step "fieldflash_${DEB_VERSION}_${p#*/}.deb"
    deb "${p#*/}" "$out/fieldflash-$VERSION-linux-${p#*/}"
    ;;
  esac
done

step "BUILDINFO and SHA256SUMS"
{
  echo "version $VERSION"
  echo "commit $COMMIT"
  echo "source_date_epoch $SOURCE_DATE_EPOCH ($BUILD_DATE)"
  echo "release_counter $RELEASE_COUNTER"
  echo "go $(go env GOVERSION)"
  echo "dpkg-deb $(dpkg-deb --version | head -1 | sed 's/.*version //')"
} >"$out/BUILDINFO"
(cd "$out" && find . -maxdepth 1 -type f -name 'fieldflash*' -printf '%f\n' | sort | xargs sha256sum) >"$out/SHA256SUMS"
cat "$out/SHA256SUMS"
