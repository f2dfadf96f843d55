#!/usr/bin/env bash
# Install the Debian packages that some tests drive as real programs, when they are missing.
# Idempotent and quick when everything is there (it only looks the commands up). Without root or
# apt-get it installs nothing, says plainly which tests will be skipped, and succeeds anyway.
set -uo pipefail

# command  package  the tests that need it
NEEDED=(
  "prometheus-alertmanager prometheus-alertmanager tests/e2e/test_alertmanager.py (real Alertmanager)"
  "amtool prometheus-alertmanager tests/e2e/test_alertmanager.py (real Alertmanager)"
  "chromium chromium browser tests (headless Chromium)"
)

missing_packages=()
skipped_tests=()
for entry in "${NEEDED[@]}"; do
  read -r command package tests <<<"$entry"
  if ! command -v "$command" >/dev/null 2>&1; then
    [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
    [[ " ${skipped_tests[*]} " == *" $tests "* ]] || skipped_tests+=("$tests")
  fi
done
[ ${#missing_packages[@]} -eq 0 ] && exit 0

skip_notice() {
  echo "test-deps: $1; these tests will be SKIPPED:"
  printf '  %s\n' "${skipped_tests[@]}"
  echo "test-deps: install them as root with: apt-get install --no-install-recommends ${missing_packages[*]}"
}

if [ "$(id -u)" -ne 0 ]; then
  skip_notice "not root, so ${missing_packages[*]} cannot be installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  skip_notice "no apt-get, so ${missing_packages[*]} cannot be installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
updated=false
failed=()
for package in "${missing_packages[@]}"; do
  echo "test-deps: installing $package"
  # A fresh machine may have no package lists yet (or stale ones): update once if an install fails.
  apt-get install -y -q --no-install-recommends "$package" && continue
  if ! $updated; then
    updated=true
    apt-get update -q && apt-get install -y -q --no-install-recommends "$package" && continue
  fi
  failed+=("$package")
done
if [ ${#failed[@]} -gt 0 ]; then
  missing_packages=("${failed[@]}")
  skipped_tests=()
  for entry in "${NEEDED[@]}"; do
    read -r command package tests <<<"$entry"
    if ! command -v "$command" >/dev/null 2>&1; then
      [[ " ${skipped_tests[*]} " == *" $tests "* ]] || skipped_tests+=("$tests")
    fi
  done
  skip_notice "apt-get could not install ${failed[*]}"
fi
# The Alertmanager package may start its own daemon on :9093 where an init system runs; the tests
# start their own instances on free ports and do not care.
exit 0
