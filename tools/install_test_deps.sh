#!/usr/bin/env bash
# Install the Debian packages that some tests drive as real programs, when they are missing.
# Idempotent and quick when everything is there (it only looks the commands up).
#
# As root with apt-get it installs them non-interactively (updating the package lists when a
# package cannot be found or fetched) and FAILS if a required one still cannot be installed.
# Without root or apt-get it installs nothing and says plainly which tests will be skipped, except
# in CI (CONNECTOR_CI set, as .ci/run does), where a missing required package is an error.
set -uo pipefail

# command  package  required|optional  the tests that need it
NEEDED=(
  "prometheus-alertmanager prometheus-alertmanager required tests/e2e/test_alertmanager.py (real Alertmanager)"
  "amtool prometheus-alertmanager required tests/e2e/test_alertmanager.py (real Alertmanager)"
  "chromium chromium required tests/e2e/test_admin_*.py (the admin pages in headless Chromium)"
)

# Fills missing_packages, missing_required and skipped_tests from the commands not found.
find_missing() {
  missing_packages=()
  missing_required=()
  skipped_tests=()
  local entry command package need tests
  for entry in "${NEEDED[@]}"; do
    read -r command package need tests <<<"$entry"
    command -v "$command" >/dev/null 2>&1 && continue
    [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
    if [ "$need" = required ] && [[ " ${missing_required[*]} " != *" $package "* ]]; then
      missing_required+=("$package")
    fi
    [[ " ${skipped_tests[*]} " == *" $tests "* ]] || skipped_tests+=("$tests")
  done
}

# Says which tests will not run; exits 1 if that is not allowed (CI, or `fatal`).
give_up() {
  local why=$1 fatal=${2:-false}
  if [ -n "${CONNECTOR_CI:-}" ] && [ ${#missing_required[@]} -gt 0 ]; then
    fatal=true
  fi
  if $fatal && [ ${#missing_required[@]} -gt 0 ]; then
    echo "test-deps: ERROR: $why; required for the tests: ${missing_required[*]}" >&2
    echo "test-deps: these tests cannot run:" >&2
    printf '  %s\n' "${skipped_tests[@]}" >&2
    exit 1
  fi
  echo "test-deps: $why; these tests will be SKIPPED:"
  printf '  %s\n' "${skipped_tests[@]}"
  echo "test-deps: install them as root with: apt-get install --no-install-recommends ${missing_packages[*]}"
  exit 0
}

find_missing
[ ${#missing_packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  give_up "not root, so ${missing_packages[*]} cannot be installed"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  give_up "no apt-get, so ${missing_packages[*]} cannot be installed"
fi

# The Alertmanager package may start its own daemon on :9093 where an init system runs; the tests
# start their own instances on free ports and do not care.
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  # Waits for another apt or dpkg (unattended-upgrades on a fresh machine) instead of failing.
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "$@"
}
updated=false
for package in "${missing_packages[@]}"; do
  echo "test-deps: installing $package"
  # A fresh machine may have no package lists yet, or stale ones: update once, then try again.
  if ! $updated && ! apt-cache show "$package" >/dev/null 2>&1; then
    updated=true
    apt-get update -q -o DPkg::Lock::Timeout=300
  fi
  apt_install "$package" && continue
  if ! $updated; then
    updated=true
    apt-get update -q -o DPkg::Lock::Timeout=300 && apt_install "$package" && continue
  fi
  echo "test-deps: apt-get could not install $package" >&2
done

find_missing
[ ${#missing_packages[@]} -eq 0 ] && exit 0
give_up "apt-get could not install ${missing_packages[*]}" true
