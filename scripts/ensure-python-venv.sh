#!/usr/bin/env bash
# Debian's python3 ships without ensurepip; `python3 -m venv` needs python3-venv.
set -euo pipefail
python=${1:-python3}
command -v "$python" >/dev/null 2>&1 || { echo "no $python on PATH: install Python 3.11" >&2; exit 2; }
if "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then exit 0; fi
ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
echo "venv: installing python${ver}-venv (ensurepip is missing)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "python${ver}-venv"
