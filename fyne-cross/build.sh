#!/usr/bin/env bash
# Cross-builds the fieldflash desktop app (GUI and command line in one binary) with fyne-cross,
# for the platforms this project's build machines cannot build natively. fyne-cross runs the
# Go and C toolchains in container images, so it needs Docker or Podman; see README.md here.
#
#   fyne-cross/build.sh [windows-amd64] [darwin-arm64] [darwin-amd64] [linux-arm64]   (default: all)
#
# Writes fyne-cross/bin/OS-ARCH/ and fyne-cross/dist/OS-ARCH/ (git-ignored), stamped like the
# native release build (packaging/stamp.sh: version, commit, commit date, release counter).
# darwin-* also needs MACOSX_SDK_PATH: a macOS SDK extracted from Apple's Command Line Tools
# for Xcode (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH

targets=("$@")
[ ${#targets[@]} != 0 ] || targets=(windows-amd64 darwin-arm64 darwin-amd64 linux-arm64)

fc=${FYNE_CROSS:-$(command -v fyne-cross || true)}
if [ -z "$fc" ]; then
  echo "fyne-cross/build.sh: fyne-cross is not installed: go install github.com/fyne-io/fyne-cross@v1.6.1 (fyne-cross/README.md)" >&2
  exit 3
fi
engine=""
# A docker command alone is not an engine: its daemon must answer.
for e in docker podman; do
  command -v "$e" >/dev/null 2>&1 && timeout 20 "$e" info >/dev/null 2>&1 && { engine=$e; break; }
done
if [ -z "$engine" ]; then
  echo "fyne-cross/build.sh: fyne-cross needs a container engine (Docker or Podman) that answers, and this machine has none;" \
    "build on a machine with one, or natively: Linux and Windows with make release here, macOS on a Mac (fyne-cross/README.md)" >&2
  exit 3
fi
[ -f FyneApp.toml ] || { echo "fyne-cross/build.sh: no FyneApp.toml at the repository root: the desktop app is not in this tree" >&2; exit 3; }

eval "$(bash packaging/stamp.sh)"
core=${VERSION%%[-+]*} # fyne's app-version is x.y.z
build=$((RELEASE_COUNTER > 0 ? RELEASE_COUNTER : 1))
cli=github.com/fieldflash/fieldflash/cli
# fyne-cross splits -ldflags at spaces into one -ldflags= per word (and fyne joins them again),
# so every word must stand alone: -X=name=value, not -X name=value.
ldflags="-s -w -buildid= -X=$cli.Version=$VERSION -X=$cli.Commit=$COMMIT -X=$cli.BuildDate=$BUILD_DATE -X=$cli.ReleaseCounter=$RELEASE_COUNTER"
# fyne-cross hands GOFLAGS to the build in the container.
export GOFLAGS="-trimpath -buildvcs=false" SOURCE_DATE_EPOCH

common=(-engine "$engine" -name fieldflash -app-version "$core" -app-build "$build" -ldflags "$ldflags")
for t in "${targets[@]}"; do
  os=${t%-*} arch=${t#*-}
  case $t in
  windows-amd64)
    # libusb for Windows is not in the fyne-cross image: USB DFU says it needs the full build
    # (transports/usb); serial, the GUI and every command work. -console: the same console
    # program as the native build, so scripts get exit codes.
    "$fc" windows -arch="$arch" -console -tags nolibusb "${common[@]}" .
    ;;
  darwin-arm64 | darwin-amd64)
    [ -n "${MACOSX_SDK_PATH:-}" ] || { echo "fyne-cross/build.sh: $t needs MACOSX_SDK_PATH, a macOS SDK (fyne-cross/README.md)" >&2; exit 2; }
    "$fc" darwin -arch="$arch" -macosx-sdk-path "$MACOSX_SDK_PATH" "${common[@]}" .
    ;;
  linux-arm64)
    "$fc" linux -arch="$arch" "${common[@]}" .
    ;;
  *)
    echo "fyne-cross/build.sh: unknown target $t; use windows-amd64, darwin-arm64, darwin-amd64 or linux-arm64" >&2
    exit 2
    ;;
  esac
  echo "fyne-cross/build.sh: $t done: fyne-cross/dist/$os-$arch/"
done
(cd fyne-cross && find bin dist -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum)
