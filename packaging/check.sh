# Shared by the packaging checks (check-deb.sh, check-wine.sh): counting checks, and what the
# build stamped (read back from DIST/BUILDINFO). Sourced, not run.

passed=0 failed=0

# check WHAT COMMAND...: runs COMMAND; a failure is counted and shown, not fatal, so one run
# reports every broken thing.
check() {
  local what=$1
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "  ok    $what"
  else
    failed=$((failed + 1))
    echo "  FAIL  $what"
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/        /' | head -40
  fi
}

# expect_exit CODE COMMAND...: COMMAND must exit with CODE; its output is shown when not.
expect_exit() {
  local want=$1 code=0
  shift
  "$@" >"$scratch/out" 2>&1 || code=$?
  if [ "$code" != "$want" ]; then
    echo "exit $code, want $want:"
    cat "$scratch/out"
    return 1
  fi
}

# contains FILE TEXT...: every TEXT appears in FILE.
contains() {
  local f=$1
  shift
  for t in "$@"; do
    grep -qF -- "$t" "$f" || { echo "no \"$t\" in:"; cat "$f"; return 1; }
  done
}

summary() { # NAME
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# buildinfo DIST: VERSION and COMMIT of the build in DIST, and its BUILD_DATE.
buildinfo() {
  VERSION=$(awk '$1 == "version" { print $2 }' "$1/BUILDINFO")
  COMMIT=$(awk '$1 == "commit" { print $2 }' "$1/BUILDINFO")
  BUILD_DATE=$(awk '$1 == "source_date_epoch" { gsub(/[()]/, "", $3); print $3 }' "$1/BUILDINFO")
  [ -n "$VERSION" ] && [ -n "$COMMIT" ] && [ -n "$BUILD_DATE" ] || {
    echo "$1/BUILDINFO: no version, commit or date; build with packaging/build.sh $1" >&2
    exit 3
  }
}
