#!/usr/bin/env bash
# Install Debian's `prometheus` (the server binary; 2.42 on Debian 12) for
# tests/e2e/test_prometheus.py, which runs the dashboards' queries against a real Prometheus.
#
# Idempotent and quick: does nothing but print one line when `prometheus` is on the PATH.
# Otherwise it needs root and apt-get; without them it says so and exits 0, and that test is
# skipped with the same reason (installing is a choice for the machine's owner, not a failure).
# The package's service is not wanted: on a machine booted with systemd, Debian starts it on
# port 9090 at install; stop it with `systemctl disable --now prometheus` if it is in the way.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1; then
    echo "prometheus: $(prometheus --version 2>&1 | head -n 1) already at $(command -v prometheus)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus: not installed and there is no apt-get here; tests/e2e/test_prometheus.py will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "prometheus: not installed; run 'sudo apt-get install -y prometheus' (not root here); tests/e2e/test_prometheus.py will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Only the server: the recommended node exporter and friends are no use to the tests.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "prometheus: $(prometheus --version 2>&1 | head -n 1) installed at $(command -v prometheus)"
