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
# One word per flag (-X=name=value): fyne package takes them one GOFLAGS word at a time.
ldflags_words="-s -w -buildid= -X=$cli.Version=$VERSION -X=$cli.Commit=$COMMIT -X=$cli.BuildDate=$BUILD_DATE -X=$cli.ReleaseCounter=$RELEASE_COUNTER"
ldflags=$ldflags_words

# Old artifacts of another version must not be listed with the new ones.
find "$out" -mindepth 1 -maxdepth 1 \( -name 'fieldflash*' -o -name SHA256SUMS -o -name BUILDINFO \) -exec rm -rf {} +

step() { printf 'build: %s\n' "$*" >&2; }
work=$(mktemp -d)
cleanup=("rm -rf '$work'")
# Undone last first: the work directory goes after what is restored from it.
trap 'for ((i = ${#cleanup[@]} - 1; i >= 0; i--)); do eval "${cleanup[i]}"; done' EXIT

# GUI: auto (default) builds the desktop app where FyneApp.toml is in the tree: linux on
# this machine's architecture (fyne package) and windows/amd64 (mingw-w64). 0: the command
# line only, everywhere.
GUI=${GUI:-auto}
if [ "$GUI" = auto ]; then
  if [ -f FyneApp.toml ]; then GUI=1; else GUI=0; fi
fi
hostarch=$(go env GOHOSTARCH)
core=${VERSION%%[-+]*} # the X.Y.Z that fyne and Windows version resources take
v4=$((RELEASE_COUNTER % 65536))
need() { # TOOL WHAT: the GUI build stops with the package to install
  command -v "$1" >/dev/null 2>&1 || { echo "build: $1 is needed for $2: run bash .ci/deps (it installs it)" >&2; exit 3; }
}

# gobuild GOOS GOARCH CGO OUTFILE PACKAGE [go build flags...]
gobuild() {
  local os=$1 arch=$2 cgo=$3 file=$4 pkg=$5
  shift 5
  GOOS=$os GOARCH=$arch CGO_ENABLED=$cgo go build -trimpath -buildvcs=false -ldflags "$ldflags" "$@" -o "$file" "$pkg"
}

exe() { [ "$1" = windows ] && echo .exe || true; }

# linux_gui ARCH: the desktop app for Linux, built and packaged by `fyne package` (fyne.io/
# tools v1.7.4) into a tar.xz, and the executable from it. fyne passes GOFLAGS' -ldflags=
# words on to go build, so each -X is one word; GNU tar takes TAR_OPTIONS from the
# environment and xz XZ_OPT, which make the archive reproducible. fyne package counts the
# build number up in FyneApp.toml: the file is put back as it was.
linux_gui() {
  local arch=$1 fyne goflags w
  need gcc "the desktop app (cgo)"
  need xz "the tar.xz package"
  fyne=$(bash packaging/fyne-tool.sh)
  cp -p FyneApp.toml "$work/FyneApp.toml"
  cleanup+=("cp -p '$work/FyneApp.toml' '$src/FyneApp.toml'")
  goflags="-trimpath -buildvcs=false"
  for w in $ldflags_words; do goflags+=" -ldflags=$w"; done
  (
    export GOFLAGS=$goflags CGO_ENABLED=1 GOOS=linux GOARCH=$arch XZ_OPT="-6 -T1"
    export TAR_OPTIONS="--sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 --numeric-owner"
    "$fyne" package --target linux --release --name fieldflash --app-version "$core" --app-build "$((v4 > 0 ? v4 : 1))" --src "$src"
  )
  cp -p "$work/FyneApp.toml" FyneApp.toml
  mv fieldflash.tar.xz "$out/fieldflash-$VERSION-linux-$arch.tar.xz"
  mkdir -p "$work/tar-$arch"
  tar -xJf "$out/fieldflash-$VERSION-linux-$arch.tar.xz" -C "$work/tar-$arch"
  cp "$work/tar-$arch/fieldflash/usr/local/bin/fieldflash" "$out/fieldflash-$VERSION-linux-$arch"
}

# ico PNG ICO: a Windows icon holding the PNG as it is (Windows Vista and later read PNG
# icons): a 6-byte header and one 16-byte entry, 256x256 written as 0.
ico() {
  local size
  size=$(stat -c %s "$1")
  le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
  {
    printf '\x00\x00\x01\x00\x01\x00'
    printf '\x00\x00\x00\x00\x01\x00\x20\x00'
    printf "$(le32 "$size")$(le32 22)"
    cat "$1"
  } >"$2"
}

# windows_gui: fieldflash.exe with the desktop app, cross-built with cgo and mingw-w64. It
# is a console program (no -H=windowsgui): in cmd and PowerShell it prints and returns exit
# codes like the command line it is; started from Explorer it lets go of the console and
# opens the window (console_windows.go). The icon, manifest and version resources go in as
# a .syso made by windres. Debian has no libusb for mingw: -tags nolibusb, and USB DFU says
# it needs the full build (transports/usb).
windows_gui() {
  local rc=$work/rc syso=$src/fieldflash_windows_amd64.syso
  need x86_64-w64-mingw32-gcc "the Windows desktop app (cgo)"
  need x86_64-w64-mingw32-windres "the Windows resources"
  mkdir -p "$rc"
  ico assets/icon.png "$rc/fieldflash.ico"
  local v1 v2 v3
  IFS=. read -r v1 v2 v3 <<<"$core"
  for f in fieldflash.rc fieldflash.exe.manifest; do
    sed -e "s|@V1@|$v1|g" -e "s|@V2@|$v2|g" -e "s|@V3@|$v3|g" -e "s|@V4@|$v4|g" \
      -e "s|@VERSION@|$VERSION|g" -e "s|@COMMIT@|$COMMIT|g" "packaging/windows/$f.in" >"$rc/$f"
  done
  (cd "$rc" && x86_64-w64-mingw32-windres -O coff -i fieldflash.rc -o fieldflash.syso)
  cp "$rc/fieldflash.syso" "$syso"
  cleanup+=("rm -f '$syso'")
  # -O2 without cgo's default -g: the debug information is stripped anyway (-s -w), and
  # generating it for GLFW and the GL bindings costs minutes of a cold build.
  CC=x86_64-w64-mingw32-gcc CXX=x86_64-w64-mingw32-g++ CGO_CFLAGS="-O2 -pipe" \
    gobuild windows amd64 1 "$out/fieldflash-$VERSION-windows-amd64.exe" . -tags release,nolibusb
  rm -f "$syso"
}

for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  if [ "$GUI" = 1 ] && [ "$p" = "linux/$hostarch" ]; then
    step "fieldflash for $os/$arch: the desktop app and the command line, fyne package (tar.xz)"
    linux_gui "$arch"
  elif [ "$GUI" = 1 ] && [ "$p" = windows/amd64 ]; then
    step "fieldflash.exe for $os/$arch: the desktop app and the command line, mingw-w64"
    windows_gui
  else
    step "fieldflash for $os/$arch: the command line (CGO_ENABLED=0)"
    gobuild "$os" "$arch" 0 "$out/fieldflash-$VERSION-$os-$arch$(exe "$os")" .
  fi
  step "fieldflash-release for $os/$arch"
  ldflags="$ldflags_words -X=main.version=$VERSION -X=main.commit=$COMMIT -X=main.buildDate=$BUILD_DATE" \
    gobuild "$os" "$arch" 0 "$out/fieldflash-release-$VERSION-$os-$arch$(exe "$os")" ./cmd/fieldflash-release
done

# deb ARCH BINARY: the Debian package. Files are staged with fixed modes and times and
# dpkg-deb makes the archive with root:root owners and sorted entries. A desktop-app build
# also gets the .desktop file and the icon that fyne package made from FyneApp.toml, and
# the shared libraries it links (libGL, X11, ...) as Depends, which dpkg-shlibdeps reads
# from the binary.
deb() {
  local arch=$1 bin=$2 stage=$work/deb-$1 depends="" recommends=""
  install -d -m 0755 "$stage" "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/udev/rules.d"
  install -m 0755 "$bin" "$stage/usr/bin/fieldflash"
  # USB DFU devices (assets/udev, with the USB transport) and serial ports (packaging/linux/udev).
  install -m 0644 assets/udev/*.rules packaging/linux/udev/*.rules "$stage/usr/lib/udev/rules.d/"
  install -m 0755 packaging/linux/deb/postinst packaging/linux/deb/postrm "$stage/DEBIAN/"
  local tree=$work/tar-$arch/fieldflash/usr/local/share
  if [ -d "$tree" ]; then
    need dpkg-shlibdeps "the .deb's Depends (package dpkg-dev)"
    local desktop icon
    desktop=$(cd "$tree/applications" && ls *.desktop)
    icon=$(cd "$tree/pixmaps" && ls)
    install -d -m 0755 "$stage/usr/share/applications" "$stage/usr/share/icons/hicolor/256x256/apps"
    install -m 0644 "$tree/applications/$desktop" "$stage/usr/share/applications/$desktop"
    install -m 0644 "$tree/pixmaps/$icon" "$stage/usr/share/icons/hicolor/256x256/apps/$icon"
    mkdir -p "$work/shlibs/debian"
    printf 'Source: fieldflash\n\nPackage: fieldflash\nArchitecture: any\n' >"$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$stage/usr/bin/fieldflash" 2>"$work/shlibs.log" | sed -n 's/^shlibs:Depends=//p') ||
      { cat "$work/shlibs.log" >&2; exit 1; }
    [ -n "$depends" ] || { cat "$work/shlibs.log" >&2; echo "build: dpkg-shlibdeps found no libraries in a cgo build" >&2; exit 1; }
    # GLFW opens the X11 libraries at run time (dlopen), where dpkg-shlibdeps cannot see
    # them; the Wayland ones it opens only in a Wayland session.
    depends+=", libx11-6, libx11-xcb1, libxcursor1, libxext6, libxi6, libxinerama1, libxrandr2, libxrender1, libxxf86vm1"
    recommends="libwayland-cursor0, libwayland-egl1, libxkbcommon0"
  fi

  # Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, one per other entry.
  local size
  size=$(find "$stage" -path "$stage/DEBIAN" -prune -o -mindepth 1 -printf '%y %s\n' |
    awk '$1 == "f" { k += int(($2 + 1023) / 1024); next } { k += 1 } END { print k }')
  sed -e "s|@DEB_VERSION@|$DEB_VERSION|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$DEB_MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@|${depends:+Depends: $depends\\n}${recommends:+Recommends: $recommends\\n}|" \
    packaging/linux/deb/control.in >"$stage/DEBIAN/control"
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
  gui=""
  for p in $PLATFORMS; do
    if [ "$GUI" = 1 ] && { [ "$p" = "linux/$hostarch" ] || [ "$p" = windows/amd64 ]; }; then gui+=" ${p/\//-}"; fi
  done
  echo "gui${gui:- none}"
  echo "go $(go env GOVERSION)"
  if [ -n "$gui" ]; then
    # The C toolchains and fyne's version shape the desktop-app builds.
    case $gui in *linux*) echo "gcc $(gcc -dumpfullversion) ($(gcc -dumpmachine))"; echo "fyne.io/tools v1.7.4" ;; esac
    case $gui in *windows*) echo "mingw-w64 gcc $(x86_64-w64-mingw32-gcc -dumpfullversion) ($(x86_64-w64-mingw32-gcc -dumpmachine))" ;; esac
  fi
  echo "dpkg-deb $(dpkg-deb --version | head -1 | sed 's/.*version //')"
} >"$out/BUILDINFO"
(cd "$out" && find . -maxdepth 1 -type f -name 'fieldflash*' -printf '%f\n' | sort | xargs sha256sum) >"$out/SHA256SUMS"
cat "$out/SHA256SUMS"
