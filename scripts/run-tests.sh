#!/usr/bin/env bash
# Every test in one pytest run: unit, static gates (ansible-test sanity,
# ansible-lint, changelog lint, ansible-doc), molecule scenarios, and integration
# tests against real services the harness starts and always stops. One exit
# status, and pytest's summary line last.
set -uo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$PWD/build/collections"
export AWS_EC2_METADATA_DISABLED=true
started=$(date +%s)
.venv/bin/pytest "$@"
rc=$?
echo "make test: pytest exit ${rc} after $(( $(date +%s) - started ))s"
if [ "$rc" -eq 5 ]; then
    echo "make test: no test ran, which is a failure" >&2
fi
exit "$rc"
