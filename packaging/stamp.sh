#!/usr/bin/env bash
# Prints what a release build is stamped with, as shell assignments for `eval`:
#   VERSION            semver; from the git tag vX.Y.Z on this commit, or X.Y.(Z+1)-dev.N+gSHORT
#                      N commits after the newest tag (0.0.0-dev.N+gSHORT with no tag)
#   COMMIT             the full commit id (with -dirty when the work tree has changes)
#   SOURCE_DATE_EPOCH  the commit's time, never the time of the build (reproducible-builds.org)
#   BUILD_DATE         SOURCE_DATE_EPOCH as RFC 3339 UTC
#   RELEASE_COUNTER    self-update's anti-rollback counter (docs/self-update.md), default 0
#   DEB_VERSION        VERSION as a Debian version (a pre-release's '-' becomes '~', so it sorts first)
# Each one already set in the environment is kept: a source tarball without .git builds with
# VERSION, COMMIT and SOURCE_DATE_EPOCH given.
set -euo pipefail
cd "$(dirname "$0")/.."

ingit=false
git rev-parse --git-dir >/dev/null 2>&1 && ingit=true

dirty=""
if $ingit && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  dirty=yes
fi

if [ -z "${COMMIT:-}" ]; then
  if ! $ingit; then
    echo "packaging: not a git checkout; set VERSION, COMMIT and SOURCE_DATE_EPOCH for the build" >&2
    exit 3
  fi
  COMMIT=$(git rev-parse HEAD)${dirty:+-dirty}
fi

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  if ! $ingit; then
    echo "packaging: not a git checkout; set SOURCE_DATE_EPOCH (the source's time, seconds since 1970)" >&2
    exit 3
  fi
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
fi
case $SOURCE_DATE_EPOCH in '' | *[!0-9]*)
  echo "packaging: SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not a number of seconds" >&2; exit 2 ;;
esac

if [ -z "${VERSION:-}" ]; then
  if ! $ingit; then
    echo "packaging: not a git checkout; set VERSION (semver, e.g. 1.4.0)" >&2
    exit 3
  fi
  short=$(git rev-parse --short=12 HEAD)
  if tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
    VERSION=${tag#v}
    [ -z "$dirty" ] || VERSION+="+dirty"
  else
    meta="g$short${dirty:+.dirty}"
    if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
      base=${tag#v}
      n=$(git rev-list --count "$tag..HEAD")
      if [[ $base =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
        VERSION="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.$((BASH_REMATCH[3] + 1))-dev.$n+$meta"
      else
        VERSION="${base%%+*}.dev.$n+$meta"
      fi
    else
      VERSION="0.0.0-dev.$(git rev-list --count HEAD)+$meta"
    fi
  fi
fi
if ! [[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
  echo "packaging: VERSION=$VERSION is not semver (MAJOR.MINOR.PATCH[-PRE][+BUILD]); self-update compares versions" >&2
  exit 2
fi

RELEASE_COUNTER=${RELEASE_COUNTER:-0}
case $RELEASE_COUNTER in '' | *[!0-9]*)
  echo "packaging: RELEASE_COUNTER=$RELEASE_COUNTER is not a whole number" >&2; exit 2 ;;
esac

core=${VERSION%%+*}
build=""
[ "$core" = "$VERSION" ] || build="+${VERSION#*+}"
DEB_VERSION="${core//-/\~}$build"

printf 'VERSION=%q\nCOMMIT=%q\nSOURCE_DATE_EPOCH=%q\nBUILD_DATE=%q\nRELEASE_COUNTER=%q\nDEB_VERSION=%q\n' \
  "$VERSION" "$COMMIT" "$SOURCE_DATE_EPOCH" "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
  "$RELEASE_COUNTER" "$DEB_VERSION"
