#!/usr/bin/env bash
# Runs the Windows build of fieldflash under Wine (64-bit) as a Windows user would run it from a
# console: --version, verify on the demo bundle, and the exit codes a script on Windows sees.
#
#   packaging/check-wine.sh DIST       DIST: the output of packaging/build.sh
#
# The Wine prefix is kept in $XDG_CACHE_HOME/fieldflash/wine64 (making one takes a while); a
# lock makes two runs on one machine take turns in it. Wine 8.0 (Debian 12) lacks
# bcryptprimitives.dll, which Go programs need from Go 1.24 on and every supported Windows
# has; packaging/windows/wine/bcryptprimitives.c stands in for it there (that file says why).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
dist=$(cd "${1:?usage: packaging/check-wine.sh DIST}" && pwd)
. packaging/check.sh
buildinfo "$dist"

wine=""
for w in wine64 /usr/lib/wine/wine64 wine; do
  if command -v "$w" >/dev/null 2>&1; then wine=$(command -v "$w"); break; fi
done
[ -n "$wine" ] || { echo "check-wine: wine64 is not installed (.ci/deps installs it: apt-get install wine64)" >&2; exit 3; }
wineserver=$(dirname "$wine")/wineserver
[ -x "$wineserver" ] || wineserver=$(command -v wineserver || true)

exe=$dist/fieldflash-$VERSION-windows-amd64.exe
[ -f "$exe" ] || { echo "check-wine: no $exe; build with packaging/build.sh" >&2; exit 3; }

scratch=$(mktemp -d)
export WINEPREFIX=${XDG_CACHE_HOME:-$HOME/.cache}/fieldflash/wine64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir -p "$(dirname "$WINEPREFIX")"
exec 9>"$WINEPREFIX.lock"
flock -w 900 9 || { echo "check-wine: another check held the Wine prefix for 15 minutes" >&2; exit 3; }
trap '[ -z "$wineserver" ] || "$wineserver" -k >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

start=$SECONDS
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  "$wine" wineboot --init >"$scratch/wineboot" 2>&1 || { cat "$scratch/wineboot"; echo "check-wine: wineboot failed" >&2; exit 3; }
  "$wineserver" -w 2>/dev/null || true
fi
sys32=$WINEPREFIX/drive_c/windows/system32
winelib=$(dirname "$(dirname "$wine")")
if ! find /usr/lib/wine /usr/lib/*/wine "$winelib" -name bcryptprimitives.dll -path '*x86_64-windows*' 2>/dev/null | grep -q .; then
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$sys32/bcryptprimitives.dll" packaging/windows/wine/bcryptprimitives.c -lbcrypt
fi
echo "check-wine: $(basename "$exe") under $("$wine" --version 2>/dev/null) (prefix ready in $((SECONDS - start)) s)"

# winpath FILE: the file as a Windows program names it (Wine maps / to drive Z:).
winpath() { local p; p=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); echo "Z:${p//\//\\}"; }
home=$(mktemp -d)
ff() { FIELDFLASH_HOME=$(winpath "$home") "$wine" "$exe" "$@"; }
bundle=$(winpath "$repo/assets/demo/demo.fwb")

ff --version >"$scratch/version" 2>&1 || true
check "fieldflash.exe --version prints version, commit and build date" \
  contains "$scratch/version" "fieldflash $VERSION" "commit  $COMMIT" "built   $BUILD_DATE" "windows-amd64"
check "fieldflash.exe verify --demo $bundle exits 0" expect_exit 0 ff verify --demo "$bundle"
check "  and says it verified" contains "$scratch/out" "verified" "fieldflash-demo" "demo/sim-smp/app.bin"
check "fieldflash.exe verify without --demo refuses the demo root (exit 1)" expect_exit 1 ff verify "$bundle"
check "fieldflash.exe verify of a missing file is an environment error (exit 3)" expect_exit 3 ff verify 'Z:\no\such\bundle.fwb'
check "fieldflash.exe kept its state under FIELDFLASH_HOME" test -d "$home/demo"
# Debian has no libusb for mingw-w64: the Windows build says so where USB is asked for.
check "fieldflash.exe devices says USB needs the full build (-tags nolibusb)" bash -c '"$@" devices 2>&1 | grep -q "USB needs the full build"' _ env FIELDFLASH_HOME="$(winpath "$home")" "$wine" "$exe"
rm -rf "$home"

# The desktop app in the Windows build: its main window under Wine on Xvfb, drawn and
# answering the keyboard, with a screenshot (window_wine_test.go).
if grep -q '^gui .*windows-amd64' "$dist/BUILDINFO"; then
  shots=${FIELDFLASH_SCREENSHOTS:-$scratch/screenshots}
  check "fieldflash.exe opens its main window under Wine on Xvfb (screenshot: $shots/windows-wine.png)" \
    env FIELDFLASH_WINE_EXE="$exe" FIELDFLASH_WINE="$wine" FIELDFLASH_SCREENSHOTS="$shots" CGO_ENABLED=1 \
    go test -count=1 -run '^TestWindowsBuildOpensItsMainWindowUnderWine$' -v .
  [ "$failed" != 0 ] || printf '%s\n' "$out" | grep -E 'main window [0-9]+x' | sed 's/^ */        /'
else
  echo "  --    $(basename "$exe") is the command line only (BUILDINFO: $(grep '^gui' "$dist/BUILDINFO")); no window to open"
fi
summary check-wine
