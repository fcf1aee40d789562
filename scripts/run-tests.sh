#!/usr/bin/env bash
# Every test in one pytest run: unit, static gates (ansible-test sanity,
# ansible-lint, changelog lint, ansible-doc), molecule scenarios, and integration
# tests against real services the harness starts and always stops. One exit
# status (pytest's 5, "no tests ran", fails too), and pytest's summary line last.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$PWD/build/collections"
export AWS_EC2_METADATA_DISABLED=true
exec .venv/bin/pytest "$@"
