#!/usr/bin/env bash
# Prints the path of the `fyne` command of fyne.io/tools v1.7.4, installing it first into
# the user's cache (from the Go module proxy) when it is not there yet. The version is
# pinned: its templates make the .desktop file and the tar.xz layout of the release.
set -euo pipefail
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
version=v1.7.4
dir=${XDG_CACHE_HOME:-$HOME/.cache}/fieldflash/tools/fyne@$version
if [ ! -x "$dir/fyne" ]; then
  echo "packaging: installing fyne.io/tools/cmd/fyne@$version into $dir" >&2
  GOBIN=$dir GOFLAGS= go install "fyne.io/tools/cmd/fyne@$version" >&2
fi
echo "$dir/fyne"
