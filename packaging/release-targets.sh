#!/usr/bin/env bash
# Lists the fieldflash executables of a release build as targets of the vendor's TUF
# repository, so that `fieldflash self-update` finds the build for its platform
# (docs/packaging.md, docs/self-update.md):
#
#   packaging/release-targets.sh DIST [--repo DIR] [--role ROLE] [--notes TEXT|@FILE]
#
# One target per platform, custom.fieldflash: component "fieldflash", hardware id the
# platform GOOS-GOARCH (linux-amd64, windows-amd64, darwin-arm64, ...), version and release
# counter as stamped into the binary (read from DIST/BUILDINFO, so they cannot disagree),
# format raw. Target path fieldflash/fieldflash-VERSION-GOOS-GOARCH[.exe]. The .deb is not a
# target: a package manager updates what it installed. Signing and publishing stay with the
# key holders: the command prints what to run next.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(cd "${1:?usage: packaging/release-targets.sh DIST [--repo DIR] [--role ROLE] [--notes TEXT|@FILE]}" && pwd)
shift
extra=() role=targets
while [ $# -gt 0 ]; do
  case $1 in
  --role) role=$2; extra+=("$1" "$2"); shift 2 ;;
  --repo | --notes) extra+=("$1" "$2"); shift 2 ;;
  *) echo "release-targets: unknown option $1" >&2; exit 2 ;;
  esac
done

version=$(awk '$1 == "version" { print $2 }' "$dist/BUILDINFO")
counter=$(awk '$1 == "release_counter" { print $2 }' "$dist/BUILDINFO")
[ -n "$version" ] && [ -n "$counter" ] || { echo "release-targets: $dist/BUILDINFO names no version or release counter; build with packaging/build.sh" >&2; exit 3; }

case $(uname -m) in x86_64) host=linux-amd64 ;; aarch64 | arm64) host=linux-arm64 ;; *) host="" ;; esac
tool=$dist/fieldflash-release-$version-$host
if [ -z "$host" ] || [ ! -x "$tool" ]; then
  tool=$(command -v fieldflash-release || true)
fi
[ -n "$tool" ] || { echo "release-targets: no fieldflash-release for this machine in $dist or PATH" >&2; exit 3; }

n=0
for f in "$dist"/fieldflash-"$version"-*; do
  name=$(basename "$f")
  platform=${name#fieldflash-"$version"-}
  platform=${platform%.exe}
  case $platform in *-*) ;; *) continue ;; esac
  "$tool" add-target --file "$f" --path "fieldflash/$name" --hardware "$platform" --component fieldflash \
    --version "$version" --counter "$counter" --format raw "${extra[@]}"
  n=$((n + 1))
done
[ "$n" != 0 ] || { echo "release-targets: no fieldflash-$version-* executables in $dist" >&2; exit 3; }
echo "release-targets: $n builds of fieldflash $version (release counter $counter) listed; next:"
echo "  fieldflash-release sign --role $role --key KEY ...   then publish, then bundle --out fieldflash-$version.fwb"
