#!/usr/bin/env bash
# Install the Debian packages whose commands tests need, each named with the test it serves:
#   tools/install-debian.sh prometheus:tests/e2e/test_prometheus.py chromium:tests/e2e/test_dashboard.py
# (the command has the package's name: Prometheus 2.42 and Chromium on Debian 12).
#
# Idempotent and quick: does nothing but print one line per package when its command is on the
# PATH. Otherwise it needs root and apt-get; without them it says so and exits 0, and the test
# is skipped with the same reason (installing is a choice for the machine's owner, not a
# failure). Only the packages themselves, no recommended extras, in one apt-get run.
# Prometheus's service is not wanted: on a machine booted with systemd, Debian starts it on
# port 9090 at install; stop it with `systemctl disable --now prometheus` if it is in the way.
set -euo pipefail

missing=()
for item in "$@"; do
    package="${item%%:*}"
    test="${item#*:}"
    if command -v "$package" >/dev/null 2>&1; then
        echo "$package: already at $(command -v "$package")"
    elif ! command -v apt-get >/dev/null 2>&1; then
        echo "$package: not installed and there is no apt-get here; $test will be skipped" >&2
    elif [ "$(id -u)" -ne 0 ]; then
        echo "$package: not installed; run 'sudo apt-get install -y $package' (not root here); $test will be skipped" >&2
    else
        missing+=("$package")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${missing[@]}"; do
    echo "$package: installed at $(command -v "$package")"
done
