#!/usr/bin/env bash
# Installs the .deb the way a technician does, `apt-get install ./fieldflash_*_amd64.deb`, runs
# the installed fieldflash (--version, verify on the demo bundle), checks what the package put
# where (binary, udev rules that udev accepts), and removes it again.
#
#   packaging/check-deb.sh DIST       DIST: the output of packaging/build.sh
#
# Needs root (or sudo) and an amd64 Debian or Ubuntu. It changes the machine's packages, so it
# refuses to touch a fieldflash that was installed by anything else than this check, and it
# holds a lock so that two runs on one machine take turns.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dist=$(cd "${1:?usage: packaging/check-deb.sh DIST}" && pwd)
. packaging/check.sh
buildinfo "$dist"

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "check-deb: needs root to install the package; run it as root" >&2; exit 3; }
  sudo=sudo
fi
arch=$(dpkg --print-architecture)
debs=("$dist"/fieldflash_*_"$arch".deb)
[ -f "${debs[0]}" ] && [ ${#debs[@]} = 1 ] || { echo "check-deb: want one fieldflash_*_$arch.deb in $dist, found: ${debs[*]}" >&2; exit 3; }
deb=${debs[0]}

scratch=$(mktemp -d)
marker=/var/tmp/fieldflash-check-deb.installed
exec 9>/var/tmp/fieldflash-check-deb.lock
flock -w 900 9 || { echo "check-deb: another check held the lock for 15 minutes" >&2; exit 3; }

installed() { dpkg-query -W -f='${Status}' fieldflash 2>/dev/null | grep -q 'install ok installed'; }
if installed && [ ! -e "$marker" ]; then
  echo "check-deb: fieldflash $(dpkg-query -W -f='${Version}' fieldflash) is installed on this machine, not by this check;" \
    "it is left alone. Remove it (apt-get remove fieldflash) to run the check here." >&2
  exit 3
fi

apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o DPkg::Lock::Timeout=600)
remove() { $sudo "${apt[@]}" purge fieldflash >/dev/null 2>&1 || true; $sudo rm -f "$marker"; }
trap 'remove; rm -rf "$scratch"' EXIT

echo "check-deb: $(basename "$deb")"
$sudo touch "$marker"
cd "$dist" # apt-get takes a local package by a path that starts with ./
check "apt-get install ./$(basename "$deb")" $sudo "${apt[@]}" install "./$(basename "$deb")"
cd "$repo"
rules=(60-fieldflash.rules 60-fieldflash-serial.rules) # USB DFU, serial
check "dpkg lists the binary and the udev rules (${rules[*]})" bash -c 'l=$(dpkg -L fieldflash); grep -qx /usr/bin/fieldflash <<<"$l" &&
  for r in "$@"; do grep -qx "/usr/lib/udev/rules.d/$r" <<<"$l" || { echo "no $r in:"; echo "$l"; exit 1; }; done' _ "${rules[@]}"
# dpkg --verify exits 0 even when it finds a changed file; what it prints is the verdict.
check "installed files match the package's md5sums" bash -c 'out=$(dpkg --verify fieldflash 2>&1); [ -z "$out" ] || { echo "$out"; exit 1; }'

if grep -q "^gui .*linux-$arch" "$dist/BUILDINFO"; then
  # The desktop app: the menu entry and icon fyne package made from FyneApp.toml, and the
  # libraries it links, which apt resolved from Depends.
  check "the .desktop file and the icon are installed" bash -c '
    d=$(dpkg -L fieldflash | grep "^/usr/share/applications/.*\.desktop$") && [ -f "$d" ] &&
    icon=$(sed -n "s/^Icon=//p" "$d") && [ -f "/usr/share/icons/hicolor/256x256/apps/$icon.png" ] &&
    grep -qx "Exec=fieldflash" "$d" || { echo "desktop file ${d:-none}:"; cat "$d" 2>/dev/null; exit 1; }'
  if command -v desktop-file-validate >/dev/null 2>&1; then
    check "desktop-file-validate accepts it" bash -c 'desktop-file-validate $(dpkg -L fieldflash | grep "^/usr/share/applications/.*\.desktop$")'
  fi
  check "Depends names the libraries the desktop app links" bash -c 'dpkg-query -W -f="\${Depends}" fieldflash | grep -q libc6'
  check "every library the installed binary needs is found" bash -c '! ldd /usr/bin/fieldflash | grep "not found"'
  if command -v Xvfb >/dev/null 2>&1 && command -v xdotool >/dev/null 2>&1; then
    check "the installed fieldflash opens its window on an X server (Xvfb)" bash -c '
      exec 3> >(cat >"$1/display")
      Xvfb -displayfd 3 -screen 0 1366x768x24 -nolisten tcp -noreset +extension GLX 2>/dev/null & x=$!
      for i in $(seq 100); do [ -s "$1/display" ] && break; sleep 0.1; done
      export DISPLAY=:$(cat "$1/display") FIELDFLASH_HOME=$(mktemp -d) XDG_RUNTIME_DIR=$(mktemp -d)
      /usr/bin/fieldflash >"$1/gui.log" 2>&1 & f=$!
      ok=1
      for i in $(seq 300); do xdotool search --name "^fieldflash$" >/dev/null 2>&1 && { ok=0; break; }; sleep 0.1; done
      kill $f $x 2>/dev/null; wait $f $x 2>/dev/null
      [ $ok = 0 ] || { echo "no window named fieldflash within 30 s; it said:"; cat "$1/gui.log"; exit 1; }' _ "$scratch"
  fi
fi

/usr/bin/fieldflash --version >"$scratch/version" 2>&1 || true
check "fieldflash --version prints version, commit and build date" \
  contains "$scratch/version" "fieldflash $VERSION" "commit  $COMMIT" "built   $BUILD_DATE"

home=$(mktemp -d)
demo() { FIELDFLASH_HOME=$home /usr/bin/fieldflash verify "$@"; }
check "fieldflash verify --demo on the demo bundle exits 0" expect_exit 0 demo --demo "$repo/assets/demo/demo.fwb"
check "  and says it verified" contains "$scratch/out" "verified" "fieldflash-demo"
check "fieldflash verify without --demo refuses the demo root (exit 1)" expect_exit 1 demo "$repo/assets/demo/demo.fwb"
rm -rf "$home"

if command -v udevadm >/dev/null 2>&1; then
  # udevadm test parses every rules file and names each line it cannot read. No USB device is
  # attached here, so this proves the syntax, not the matching (docs/packaging.md).
  dev=$(find /sys/class/tty -mindepth 1 -maxdepth 1 | head -1)
  check "udev reads ${rules[*]} without an error" bash -c '
    out=$(udevadm test --action=add "$1" 2>&1) || true
    shift
    for r in "$@"; do
      printf "%s\n" "$out" | grep -q "Reading rules file: /usr/lib/udev/rules.d/$r" || { echo "udev did not read $r:"; printf "%s\n" "$out" | tail -20; exit 1; }
      if printf "%s\n" "$out" | grep -F "$r:"; then exit 1; fi
    done' _ "$dev" "${rules[@]}"
else
  check "udevadm is installed (.ci/deps installs udev)" false
fi

check "apt-get purge fieldflash" $sudo "${apt[@]}" purge fieldflash
check "nothing of it is left" bash -c '! dpkg-query -W -f="\${Status}" fieldflash 2>/dev/null | grep -q "ok installed" && [ ! -e /usr/bin/fieldflash ] &&
  for r in "$@"; do [ ! -e "/usr/lib/udev/rules.d/$r" ] || exit 1; done' _ "${rules[@]}"
$sudo rm -f "$marker"
summary check-deb
