#!/usr/bin/env bash
# Install the Debian packages bindep.txt lists for a profile, only those missing.
# Package scripts must not start services (docker.io would start a dockerd with
# a bridge network, prometheus would listen on all addresses), so apt runs
# behind a policy-rc.d that forbids starting anything; the lab starts what it
# needs itself, on loopback.
set -euo pipefail
profile=${1:-test}
here=$(cd "$(dirname "$0")/.." && pwd)
bindep="$here/.venv/bin/bindep"
[ -x "$bindep" ] || { echo "ensure-system-packages: $bindep missing: run 'make venv' first" >&2; exit 2; }

missing=$("$bindep" -b -f "$here/bindep.txt" "$profile" || true)
if [ -z "$missing" ]; then
    echo "system packages: all present (bindep profile '$profile')"
    exit 0
fi
# shellcheck disable=SC2086
echo "system packages: installing" $missing

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure-system-packages: need root (or sudo) to install: $missing" >&2; exit 2
    fi
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# streamops.maintenance: no service starts during package install\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent or stale on a fresh machine.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
still=$("$bindep" -b -f "$here/bindep.txt" "$profile" || true)
if [ -n "$still" ]; then
    echo "ensure-system-packages: still missing after install: $still" >&2
    exit 1
fi
echo "system packages: installed"
