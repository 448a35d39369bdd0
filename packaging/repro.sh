#!/usr/bin/env bash
# Proves the release build reproducible: builds every artifact twice, from two copies of this
# source tree in two different directories (different depth and name), under a different
# umask and time zone, and compares the SHA-256 of every artifact. Any difference fails, with
# the names of the files that differ.
#
#   packaging/repro.sh [--keep DIR]     DIR receives the first build's artifacts
#
# Both builds share the Go build cache by default (the second build then links from cached
# packages: what it proves is that nothing of the directory, the user or the clock reaches the
# output). REPRO_SEPARATE_CACHE=1 gives each build a cache of its own, so the compiler and the
# C toolchain run twice from nothing: slow (two cold builds), for a release engineer's check.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH

keep=""
while [ $# -gt 0 ]; do
  case $1 in
  --keep) keep=$2; shift 2 ;;
  *) echo "usage: packaging/repro.sh [--keep DIR]" >&2; exit 2 ;;
  esac
done

# One stamp for both builds: the same commit must give the same bytes.
eval "$(bash packaging/stamp.sh)"
export VERSION COMMIT SOURCE_DATE_EPOCH RELEASE_COUNTER

base=$(mktemp -d -t fieldflash-repro.XXXXXX)
trap 'rm -rf "$base"' EXIT
one=$base/one/fieldflash
two=$base/second-build/in/a/deeper/folder/fieldflash-copy

# copy DEST: this tree as git sees it (tracked and untracked files that are not ignored, so
# uncommitted work is built as it is), without build outputs.
copy() {
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$1"
}
copy "$one"
copy "$two"

build() { # DIR OUT UMASK TZ CACHE
  local start=$SECONDS
  (
    cd "$1"
    umask "$3"
    [ -z "$5" ] || export GOCACHE=$5
    TZ=$4 bash packaging/build.sh "$2" >"$2.log" 2>&1
  ) || { cat "$2.log" >&2; echo "repro: the build in $1 failed" >&2; exit 1; }
  echo "repro: built in $1 (umask $3, TZ $4) in $((SECONDS - start)) s" >&2
}

cache_one="" cache_two=""
if [ "${REPRO_SEPARATE_CACHE:-0}" = 1 ]; then
  cache_one=$base/cache-one cache_two=$base/cache-two
fi
build "$one" "$base/dist-one" 022 UTC "$cache_one"
build "$two" "$base/dist-two" 077 Pacific/Chatham "$cache_two"

echo "repro: version $VERSION, commit $COMMIT, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
printf '%-64s  %-8s  %s\n' "sha256 (first build)" "second" "artifact"
differ=0 total=0
while read -r sum name; do
  total=$((total + 1))
  other=$(awk -v n="$name" '$2 == n { print $1 }' "$base/dist-two/SHA256SUMS")
  if [ "$other" = "$sum" ]; then
    printf '%s  %-8s  %s\n' "$sum" same "$name"
  else
    printf '%s  %-8s  %s\n' "$sum" "${other:0:8}" "$name"
    differ=$((differ + 1))
  fi
done <"$base/dist-one/SHA256SUMS"
if ! diff <(awk '{ print $2 }' "$base/dist-one/SHA256SUMS") <(awk '{ print $2 }' "$base/dist-two/SHA256SUMS") >/dev/null; then
  echo "repro: the two builds made different sets of files:" >&2
  diff <(awk '{ print $2 }' "$base/dist-one/SHA256SUMS") <(awk '{ print $2 }' "$base/dist-two/SHA256SUMS") >&2 || true
  differ=$((differ + 1))
fi

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  cp -p "$base/dist-one/"* "$keep/"
fi

if [ "$differ" != 0 ]; then
  echo "repro: $differ of $total artifacts differ between the two builds; compare them with diffoscope (apt-get install diffoscope) after rerunning with --keep" >&2
  exit 1
fi
echo "repro: $total artifacts byte-identical in two builds"
